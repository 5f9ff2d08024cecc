"""What the model is shown of files, within the budget, and what the budget counts."""

from __future__ import annotations

from bot.conversations.context import Context, Turn, fit_context
from bot.files.images import image_tokens
from bot.files.parts import attachment
from db.files import FileRow


def row(name: str, kind: str, *, text: str | None = None, size: tuple[int, int] | None = None,
        state: str = "read", message_id: int = 1) -> FileRow:  # fmt: skip
    width, height = size or (None, None)
    return FileRow(
        id=1, message_id=message_id, team_id="T1", slack_file_id=f"F{name}", name=name,
        mimetype="", filetype="", pretty_type="", size=10, url="https://files.slack.com/x",
        needs_info=False, kind=kind, state=state, text=text, note=None, width=width,
        height=height,
    )  # fmt: skip


def test_images_are_counted_and_fetched_only_for_kept_turns() -> None:
    photo = attachment(row("old.png", "image", size=(2000, 1500)))
    new = attachment(row("new.png", "image", size=(1024, 1024)))
    turns = [
        Turn("user", "x" * 4_000, "Ann", (photo,)),
        Turn("assistant", "ok"),
        Turn("user", "and this one?", "Ann", (new,)),
    ]
    fetched = []

    def images(file: FileRow) -> str | None:
        fetched.append(file.name)
        return "data:image/png;base64,AAAA"

    fitted = fit_context("Be brief.", turns, max_tokens=1_200, images=images)
    assert fetched == ["new.png"]  # the old turn did not fit: its image was never fetched
    assert fitted.image_tokens == image_tokens(1024, 1024) == 765
    last = fitted.messages[-1]["content"]
    assert isinstance(last, list)
    assert [part["type"] for part in last] == ["text", "text", "image_url"]
    # The model and the person are told which files went.
    assert "old.png" in str(fitted.messages[1]["content"])
    assert fitted.notes == ["Earlier files were left out to fit: old.png."]
    context = Context(fitted.messages, first_question=False, image_tokens=fitted.image_tokens)
    assert context.prompt_tokens > 765  # the budget's estimate counts the image


def test_an_image_gone_from_slack_is_left_out_with_a_note() -> None:
    gone = attachment(row("chart.png", "image", size=(100, 100)))
    fitted = fit_context("S", [Turn("user", "see", None, (gone,))], max_tokens=5_000,
                         images=lambda _file: None)  # fmt: skip
    assert fitted.notes == ["chart.png is no longer available on Slack, so I did not see it."]
    content = fitted.messages[-1]["content"]
    assert content == [
        {"type": "text", "text": "see"},
        {"type": "text", "text": "[Image chart.png: no longer available]"},
    ]
    assert fitted.image_tokens == 0  # not sent, not counted
