"""Files people share, end to end: Slack events with files in, the real app, files served by the
fake Slack to the bot's token only, and what the fake model endpoint was sent."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import MessageFile
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.filemakers import make_encrypted_pdf, make_image, make_pdf, png_claiming
from tests.handlers.test_conversations import reply_text
from tests.harness import BOT_USER, SlackAppHarness

CSV = b"name,notice\nAda,3 months\nBob,1 month\n"


def share(app: SlackAppHarness, text: str, files: list[dict[str, Any]], **kwargs: Any) -> str:
    """A channel mention with files, as Slack sends it: app_mention, then the file_share
    message event; the message ts."""
    event = app.message_event(f"<@{BOT_USER}> {text}", files=files, **kwargs)
    assert app.event(event | {"type": "app_mention"}).status == 200
    assert app.event(event | {"subtype": "file_share"}).status == 200
    return str(event["ts"])


def last_user_content(model: FakeOpenAI, index: int = -1) -> Any:
    return model.completions()[index]["messages"][-1]["content"]


def texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part["type"] == "text")


def images(content: Any) -> list[Image.Image]:
    found: list[Image.Image] = []
    for part in content if isinstance(content, list) else []:
        if part["type"] == "image_url":
            url = part["image_url"]["url"]
            head, _, data = url.partition(",")
            assert head in ("data:image/jpeg;base64", "data:image/png;base64")
            found.append(Image.open(io.BytesIO(base64.b64decode(data))))
    return found


def stored_files(sessions: sessionmaker[Session]) -> list[MessageFile]:
    with sessions() as session:
        return list(session.scalars(select(MessageFile).order_by(MessageFile.id)))


def test_an_image_a_pdf_and_a_csv_reach_the_model_and_stay_for_follow_ups(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    photo = slack.add_file("photo.png", make_image(3000, 1200), mimetype="image/png")
    pdf = make_pdf(["Contract\nNotice period: three months.", "Page two: signatures."])
    contract = slack.add_file("contract.pdf", pdf, mimetype="application/pdf")
    sheet = slack.add_file("staff.csv", CSV, mimetype="text/csv")

    ts = share(app, "what do these say?", [photo, contract, sheet])
    app.wait_idle()

    [request] = model.completions()
    content = last_user_content(model)
    words = texts(content)
    assert "what do these say?" in words
    assert "Notice period: three months." in words and "Page two: signatures." in words
    assert "[File contract.pdf (a PDF)]" in words
    assert "[File staff.csv (a text file)]" in words and "Ada,3 months" in words
    [image] = images(content)
    assert image.size == (2000, 800)  # the longest side at most 2,000 pixels
    assert request["messages"][0]["role"] == "system"
    # Each file was fetched once, with the bot token, from the fake Slack's own host.
    downloads = slack.downloads()
    assert len(downloads) == 3
    assert {d.headers["Authorization"] for d in downloads} == {"Bearer xoxb-test"}
    assert "_" not in reply_text(slack).split("Hello")[0]  # no note: everything was read

    rows = stored_files(sessions)
    assert [(r.name, r.kind, r.state) for r in rows] == [
        ("photo.png", "image", "read"),
        ("contract.pdf", "pdf", "read"),
        ("staff.csv", "text", "read"),
    ]
    assert rows[0].text is None and (rows[0].width, rows[0].height) == (2000, 800)
    assert rows[1].text is not None and "three months" in rows[1].text

    # A follow-up has the files without sharing them again; the image comes from the cache.
    app.say("and the second page?", thread_ts=ts)
    app.wait_idle()
    history = model.completions()[-1]["messages"]
    earlier = history[1]["content"]
    assert "Page two: signatures." in texts(earlier)
    assert len(images(earlier)) == 1
    assert history[-1]["content"] == "and the second page?"
    assert len(slack.downloads()) == 3


def test_files_it_cannot_read_are_named_and_the_turn_is_answered(
    make_app: Any, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(max_file_bytes=200_000)
    archive = slack.add_file("logs.zip", b"PK\x03\x04" + b"\x00" * 200, mimetype="application/zip")
    huge = slack.add_file("dump.txt", b"a" * 1000, mimetype="text/plain", size=60_000_000)
    liar = slack.add_file(
        "small.log", b"x" * 600_000, mimetype="text/plain", size=2_000, chunked=True
    )
    other_token = slack.add_file("notes.md", b"# secret", mimetype="text/markdown", token="xoxb-no")
    locked = slack.add_file("locked.pdf", make_encrypted_pdf(["x"]), mimetype="application/pdf")
    bomb = slack.add_file("bomb.png", png_claiming(60_000, 60_000), mimetype="image/png")

    ts = share(app, "look", [archive, huge, liar, other_token, locked, bomb])
    app.wait_idle()

    said = reply_text(slack)
    assert "I can't read logs.zip: it is a ZIP archive." in said
    assert "I can't read dump.txt: it is 60 MB, more than the 0.2 MB I read." in said
    assert "I can't read small.log: it is larger than the 0.2 MB I read." in said
    assert "I can't read notes.md: Slack did not let me download it" in said
    assert "I can't read locked.pdf: the PDF is protected with a password." in said
    assert "I can't read bomb.png: the image has too many pixels (over 50 million)" in said
    assert "Hello from the fake model." in said  # and answered
    words = texts(last_user_content(model))
    assert "[File logs.zip: I could not read it: it is a ZIP archive]" in words
    assert "# secret" not in words and "Sign in" not in words
    # The ZIP and the 60 MB file were never downloaded; the liar's read stopped at the cap.
    fetched = {d.args["file"] for d in slack.downloads()}
    assert fetched == {liar["id"], other_token["id"], locked["id"], bomb["id"]}
    assert {r.state for r in stored_files(sessions)} == {"unreadable"}
    assert [c.args["thread_ts"] for c in slack.calls_to("chat.startStream")] == [ts]


def test_a_mention_without_its_files_is_completed_by_its_file_share_event_and_answered_once(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    # The app has seen that Slack sends it the message events of mentions: it waits for them.
    app.mention("hello")
    app.wait_idle()
    sheet = slack.add_file("staff.csv", CSV, mimetype="text/csv")
    # As reported in 2026: the app_mention event lacks `files`; the message event has them.
    event = app.message_event(f"<@{BOT_USER}> summarize this")
    assert app.event(event | {"type": "app_mention"}).status == 200
    with_files = event | {"subtype": "file_share", "files": [sheet]}
    assert app.event(with_files).status == 200
    assert app.event(with_files, retry_num=1).status == 200  # a redelivery changes nothing
    app.wait_idle()

    assert "Ada,3 months" in texts(last_user_content(model))
    assert len(model.completions()) == len(slack.calls_to("chat.startStream")) == 2
    assert [r.name for r in stored_files(sessions)] == ["staff.csv"]

    # The other order: the file_share event first, then a mention without files.
    other = slack.add_file("other.csv", b"a,b\n1,2\n", mimetype="text/csv")
    second = app.message_event(f"<@{BOT_USER}> and this?", files=[other])
    assert app.event(second | {"subtype": "file_share"}).status == 200
    assert app.event(second | {"type": "app_mention", "files": []}).status == 200
    app.wait_idle()
    assert len(model.completions()) == 3
    assert "a,b\n1,2" in texts(last_user_content(model))


def test_a_dm_of_a_file_alone_is_a_question_about_it(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    contract = slack.add_file(
        "terms.pdf", make_pdf(["Notice: 30 days."]), mimetype="application/pdf"
    )
    event = app.message_event("", channel="D0001", channel_type="im", files=[contract])
    assert app.event(event | {"subtype": "file_share"}).status == 200
    app.wait_idle()

    assert "Notice: 30 days." in texts(last_user_content(model))
    assert "Ask me something" not in reply_text(slack)
    assert "Hello from the fake model." in reply_text(slack)


def test_a_model_that_reads_no_images_is_named_with_the_way_to_another(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.text_only_models = {"gpt-4o-mini"}
    photo = slack.add_file("screen.jpg", make_image(640, 480, format="JPEG"), mimetype="image/jpeg")
    share(app, "what is on this screen?", [photo])
    app.wait_idle()

    said = reply_text(slack)
    assert (
        "The model gpt-4o-mini cannot read images: choose one that can with /model, then ask "
        "again." in said
    )
    assert "try again" not in said


def test_deleted_files_and_messages_take_their_text_with_them(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    pdf = slack.add_file("plan.pdf", make_pdf(["Secret plan: launch on Monday."]),
                         mimetype="application/pdf")  # fmt: skip
    photo = slack.add_file("chart.png", make_image(300, 200), mimetype="image/png")
    ts = share(app, "read these", [pdf, photo])
    app.wait_idle()
    assert "Secret plan" in texts(last_user_content(model))

    # Slack says both files were deleted: the text goes, and the image cannot be fetched.
    for file in (pdf, photo):
        slack.delete_file(file["id"])
        assert (
            app.event({"type": "file_deleted", "file_id": file["id"], "event_ts": "1"}).status
            == 200
        )
    app.wait_idle()
    rows = stored_files(sessions)
    assert [(r.state, r.text) for r in rows] == [("deleted", None), ("deleted", None)]

    app.say("what was the plan?", thread_ts=ts)
    app.wait_idle()
    earlier = texts(model.completions()[-1]["messages"][1]["content"])
    assert "Secret plan" not in earlier
    assert "[File plan.pdf (a PDF) was deleted in Slack]" in earlier

    # Deleting the message itself removes its files' rows.
    deletion = {
        "type": "message", "subtype": "message_deleted", "hidden": True, "channel": "C0001",
        "channel_type": "channel", "ts": app.next_ts(), "deleted_ts": ts,
        "previous_message": {"type": "message", "user": "U0001", "text": "…", "ts": ts},
    }  # fmt: skip
    assert app.event(deletion).status == 200
    app.wait_idle()
    assert stored_files(sessions) == []


def test_a_file_too_long_for_the_context_is_cut_and_said_so(
    make_app: Any, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    app = make_app(max_context_tokens=1_000)
    long_text = "".join(f"line {n:05d} of the log\n" for n in range(2_000)).encode()
    log = slack.add_file("build.log", long_text, mimetype="text/plain")
    share(app, "why did it fail?", [log])
    app.wait_idle()

    sent = texts(last_user_content(model))
    assert "line 00000 of the log" in sent and "line 01999" not in sent
    assert len(sent) < 4_400  # about 1,000 tokens of four characters
    assert "Only the first part of build.log fit in what the model reads." in reply_text(slack)


def test_a_file_given_by_id_alone_is_described_with_files_info(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    # Slack Connect: the event names the file and says to ask files.info for the rest.
    hosted = slack.add_file("shared.json", b'{"owner": "Ada"}', mimetype="application/json")
    bare = {"id": hosted["id"], "file_access": "check_file_info"}
    share(app, "who owns it?", [bare])
    app.wait_idle()

    [info] = slack.calls_to("files.info")
    assert info.args["file"] == hosted["id"] and info.token == "xoxb-test"
    assert '{"owner": "Ada"}' in texts(last_user_content(model))
