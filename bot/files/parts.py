"""What the model is shown of a message's files, and what the person is told about them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.files.images import image_tokens
from bot.files.service import slack_file
from db.files import FileRow

# Tokens guessed for an image whose size is not known yet (it was never read): a 2000 x 1500
# image under OpenAI's rule.
UNKNOWN_IMAGE_TOKENS = image_tokens(2000, 1500)


@dataclass(frozen=True)
class Attachment:
    """One file of a message as the model is shown it: a label, its text, or an image."""

    name: str
    label: str  # "[File report.pdf (a PDF)]", or why it cannot be read
    body: str | None = None  # the file's text (a PDF's, a text file's)
    image: FileRow | None = None  # an image, fetched only if its message is kept
    image_tokens: int = 0
    cut: bool = False  # `body` was shortened to fit the context

    def text(self) -> str:
        """The attachment as text (images: their label alone)."""
        if self.body is None:
            return self.label
        return f"{self.label}\n{self.body}\n[End of {self.name}]"

    def shortened(self, chars: int) -> Attachment:
        """This attachment with its text cut to `chars` characters."""
        assert self.body is not None
        return replace(self, body=self.body[: max(0, chars)], cut=True)


def attachment(row: FileRow) -> Attachment:
    """What the model is shown of one stored file."""
    name = row.name
    described = slack_file(row).described
    if row.state == "deleted":
        return Attachment(name, f"[File {name} ({described}) was deleted in Slack]")
    if row.state == "unreadable":
        return Attachment(name, f"[File {name}: I could not read it: {row.note}]")
    if row.state == "pending":
        return Attachment(name, f"[File {name} ({described}): not read]")
    note = f"; {row.note}" if row.note else ""
    if row.kind == "image":
        tokens = (
            image_tokens(row.width, row.height)
            if row.width and row.height
            else UNKNOWN_IMAGE_TOKENS
        )
        return Attachment(name, f"[Image {name}{note}]", image=row, image_tokens=tokens)
    return Attachment(name, f"[File {name} ({described}){note}]", body=row.text or "")


def by_message(rows: Sequence[FileRow]) -> dict[int, tuple[Attachment, ...]]:
    """The attachments of each message, by message id, in the order they were shared."""
    found: dict[int, list[Attachment]] = {}
    for row in rows:
        found.setdefault(row.message_id, []).append(attachment(row))
    return {message_id: tuple(atts) for message_id, atts in found.items()}


def person_notes(rows: Sequence[FileRow]) -> list[str]:
    """What the person who shared these files is told before the answer: what could not be
    read, and what was read only in part."""
    notes = []
    for row in rows:
        if row.state == "unreadable":
            notes.append(f"I can't read {row.name}: {row.note}.")
        elif row.state == "read" and row.note and row.kind != "image":
            notes.append(f"Of {row.name}, {row.note}.")
    return notes
