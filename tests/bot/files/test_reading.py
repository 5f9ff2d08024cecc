"""Reading shared files: bad input gets a named reason, never a traceback; tokens go only to
Slack's hosts. Real files made here; downloads from the loopback fake Slack."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.retention import RetentionService
from bot.files.download import FileDownloader
from bot.files.extract import MAX_TEXT_CHARS, extract
from bot.files.images import MAX_SIDE, image_tokens, prepare_image
from bot.files.kinds import FileKind, SlackFile, parse_files
from bot.files.problems import FileProblem
from db import files as file_queries
from db import queries
from db.files import NewFile
from db.models import MessageFile
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.filemakers import make_encrypted_pdf, make_image, make_pdf, png_claiming


def named(name: str, mimetype: str = "") -> SlackFile:
    return SlackFile(id="F1", name=name, mimetype=mimetype)


def reason(file: SlackFile, data: bytes) -> str:
    with pytest.raises(FileProblem) as caught:
        extract(file, data)
    return caught.value.reason


def test_bad_files_get_a_reason_each() -> None:
    pdf = named("a.pdf", "application/pdf")
    assert reason(pdf, make_encrypted_pdf(["hidden"])) == "the PDF is protected with a password"
    assert reason(pdf, make_pdf(["x"])[:200]) == "the PDF is damaged or incomplete"
    assert reason(pdf, b"hello") == "it is not a PDF, though it is named like one"
    assert reason(pdf, make_pdf([""])).startswith("the PDF has no text in it")
    png = named("a.png", "image/png")
    whole = make_image(800, 600)
    assert reason(png, whole[: len(whole) // 2]) == "the image is damaged or incomplete"
    assert reason(png, png_claiming(60_000, 60_000)).startswith("the image has too many pixels")
    assert reason(png, b"not an image at all").startswith("it is not an image")
    text = named("notes.txt", "text/plain")
    assert reason(text, "caf\xe9".encode("latin-1")) == "it is not UTF-8 text"
    assert reason(text, b"\x00\x01binary") == "it holds binary data, not text"


def test_images_are_made_small_and_text_is_capped() -> None:
    prepared = prepare_image(make_image(4000, 3000, format="JPEG"))
    assert max(prepared.size) == MAX_SIDE and prepared.mimetype == "image/jpeg"
    assert prepared.original_size == (4000, 3000)
    small = make_image(300, 200, format="GIF")
    assert prepare_image(small).data == small  # small enough: sent as it is
    webp = prepare_image(make_image(3000, 90, format="WEBP"))
    assert (webp.size, webp.mimetype) == ((2000, 60), "image/jpeg")
    assert prepare_image(make_image(30, 30, format="WEBP")).mimetype == "image/webp"
    assert image_tokens(2000, 1500) == 765 and image_tokens(512, 512) == 255
    read = extract(named("big.md"), b"#" * (MAX_TEXT_CHARS + 10))
    assert read.kind is FileKind.TEXT and read.text == "#" * MAX_TEXT_CHARS
    assert read.note == f"only its first {MAX_TEXT_CHARS:,} characters were read"
    # Bytes decide over the name: a PNG named .txt is an image.
    assert extract(named("x.txt", "text/plain"), make_image(10, 10)).kind is FileKind.IMAGE


def test_slack_file_objects_are_parsed_and_described() -> None:
    files = parse_files([
        {"id": "F1", "name": "logs.zip", "mimetype": "application/zip", "filetype": "zip",
         "size": 10, "url_private_download": "https://files.slack.com/x"},
        {"id": "F2", "file_access": "check_file_info"},
        {"id": "F1", "name": "duplicate"},
        "not a file",
        {"id": "F3", "name": "gone.png", "mode": "tombstone"},
    ])  # fmt: skip
    assert [f.id for f in files] == ["F1", "F2", "F3"]
    assert files[0].described == "a ZIP archive" and files[0].known_binary
    assert files[0].kind is FileKind.OTHER and files[0].url == "https://files.slack.com/x"
    assert files[1].needs_info and files[2].gone
    assert parse_files(None) == ()


def test_the_token_goes_to_slacks_hosts_only(slack: FakeSlackAPI, model: FakeOpenAI) -> None:
    tokens = []

    def token_for(team_id: str) -> str:
        tokens.append(team_id)
        return "xoxb-test"

    downloader = FileDownloader(token_for=token_for, max_bytes=1_000, api_url=slack.base_url)
    try:
        assert downloader.trusted("https://files.slack.com/files-pri/T1-F1/a.png")
        assert downloader.trusted("https://files.slack-gov.com/files-pri/T1-F1/a.png")
        assert not downloader.trusted("http://files.slack.com/a.png")  # not over TLS
        assert not downloader.trusted("https://files.slack.com.evil.example/a.png")
        assert not downloader.trusted("https://evilslack.com/a.png")
        # Another port of the same loopback host is another origin: never sent the token.
        elsewhere = SlackFile(id="F9", name="a.txt", url=f"{model.url}/v1/models")
        with pytest.raises(FileProblem, match="not on Slack's own file servers"):
            downloader.download("T0001", elsewhere)
        assert model.requests == []
        hosted = slack.add_file("a.txt", b"hello", mimetype="text/plain")
        file = SlackFile.parse(hosted)
        assert file is not None
        assert downloader.download("T0001", file).data == b"hello"
    finally:
        downloader.close()


def test_a_redirect_off_slack_is_not_followed_with_the_token(slack: FakeSlackAPI) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(302, headers={"location": "https://evil.example/steal"})

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    downloader = FileDownloader(token_for=lambda _t: "xoxb-test", max_bytes=10, client=client)
    file = SlackFile(id="F1", name="a.txt", url="https://files.slack.com/files-pri/T-F1/a.txt")
    with pytest.raises(FileProblem, match="not on Slack's own file servers"):
        downloader.download("T1", file)
    assert [str(r.url.host) for r in seen] == ["files.slack.com"]


def test_purging_a_message_removes_its_files(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        thread = queries.start_conversation(
            session, team_id="T1", channel_id="C1", thread_ts="1.0", default_model="m",
            user_id=None, title="t",
        )  # fmt: skip
        assert thread is not None
        message_id = queries.add_message_once(
            session, conversation_id=thread.id, user_id=None, role="user", content="see",
            slack_ts="1.0",
        )  # fmt: skip
        assert message_id is not None
        new = NewFile("F1", "a.txt", "text/plain", "text", "Plain Text", 4, None, False, "text")
        assert file_queries.add_files(session, message_id=message_id, team_id="T1", files=[new])
        assert not file_queries.add_files(session, message_id=message_id, team_id="T1", files=[new])
    RetentionService(sessions).purge(timedelta(seconds=-1))
    with sessions() as session:
        assert session.scalars(select(MessageFile)).all() == []
