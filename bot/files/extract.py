"""What the model gets of a downloaded file: its text, an image, or why it cannot be read."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from bot.files.images import FORMATS, PreparedImage, prepare_image
from bot.files.kinds import FileKind, SlackFile
from bot.files.pdf import pdf_text
from bot.files.problems import FileProblem

# Text kept of one file (about 25,000 tokens); the context trims further to MAX_CONTEXT_TOKENS.
MAX_TEXT_CHARS = 100_000
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", FileKind.IMAGE),
    (b"\xff\xd8\xff", FileKind.IMAGE),
    (b"GIF87a", FileKind.IMAGE),
    (b"GIF89a", FileKind.IMAGE),
    (b"%PDF", FileKind.PDF),
)


@dataclass(frozen=True)
class Extracted:
    """A file as read: text (PDF, text files) or an image, and a note when it was cut."""

    kind: FileKind
    text: str | None = None
    image: PreparedImage | None = None
    note: str | None = None  # e.g. "only the first 100,000 characters"


def sniff(data: bytes) -> FileKind | None:
    """What the bytes say the file is (images and PDFs); None when they say nothing."""
    head = data[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileKind.IMAGE
    return None


def extract(file: SlackFile, data: bytes) -> Extracted:
    """Read `data`, the bytes of `file`; raises `FileProblem` when they cannot be read."""
    kind = sniff(data) or file.kind
    if kind is FileKind.IMAGE:
        image = prepare_image(data)
        note = None
        if image.size != image.original_size:
            width, height = image.original_size
            note = f"scaled down from {width} x {height} pixels"
        return Extracted(FileKind.IMAGE, image=image, note=note)
    if kind is FileKind.PDF:
        read = pdf_text(data, max_chars=MAX_TEXT_CHARS)
        note = None
        if read.truncated:
            note = f"only its first {read.pages_read:,} of {read.pages:,} pages were read"
        if not read.text.strip():
            raise FileProblem(
                "the PDF has no text in it (a scan? I do not read text in images of pages)"
            )
        return Extracted(FileKind.PDF, text=read.text, note=note)
    return _text(file, data)


def _text(file: SlackFile, data: bytes) -> Extracted:
    """A text file: UTF-8 (a BOM allowed), up to MAX_TEXT_CHARS characters."""
    limit = MAX_TEXT_CHARS * 4  # a character is at most 4 bytes in UTF-8
    head = data[:limit]
    if b"\x00" in head[:8192]:
        if file.kind is FileKind.TEXT:
            raise FileProblem("it holds binary data, not text")
        raise FileProblem(f"it is {file.described}")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head, final=len(data) <= limit)
    except UnicodeDecodeError as exc:
        if file.kind is FileKind.TEXT:
            raise FileProblem("it is not UTF-8 text", detail=str(exc)) from exc
        raise FileProblem(f"it is {file.described}", detail=str(exc)) from exc
    note = None
    if len(text) > MAX_TEXT_CHARS or len(data) > limit:
        text = text[:MAX_TEXT_CHARS]
        note = f"only its first {MAX_TEXT_CHARS:,} characters were read"
    return Extracted(FileKind.TEXT, text=text, note=note)


__all__ = ["FORMATS", "MAX_TEXT_CHARS", "Extracted", "extract", "sniff"]
