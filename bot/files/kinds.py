"""A file as Slack describes it in a message event, and what kind of file it is to the bot."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FileKind(StrEnum):
    """How the bot reads a file."""

    IMAGE = "image"  # sent to the model as an image (PNG, JPEG, GIF, WebP)
    PDF = "pdf"  # its text, extracted here
    TEXT = "text"  # UTF-8 text: plain text, Markdown, CSV, JSON, logs, code
    OTHER = "other"  # named, not read


IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_IMAGE_FILETYPES = {"png", "jpg", "jpeg", "gif", "webp"}
# Slack's `filetype` values (and file name endings) of text people share; anything else whose
# mimetype is text/* counts as well, and so does a file whose bytes turn out to be UTF-8.
_TEXT_FILETYPES = {
    "text", "txt", "markdown", "md", "csv", "tsv", "json", "yaml", "yml", "xml", "html", "log",
    "python", "py", "javascript", "js", "typescript", "ts", "java", "go", "rust", "rs", "c",
    "cpp", "h", "csharp", "cs", "ruby", "rb", "php", "shell", "sh", "bash", "sql", "kotlin",
    "swift", "scala", "toml", "ini", "diff", "patch", "css", "scss", "tex", "r", "perl", "lua",
    "dockerfile", "makefile", "post", "space", "svg", "ocaml", "haskell", "clojure", "elixir",
    "erlang", "groovy", "powershell", "vb", "matlab", "apex", "cfm", "d", "dart", "fsharp",
    "julia", "lisp", "objc", "pascal", "puppet", "smalltalk", "verilog", "vbscript", "vhdl",
}  # fmt: skip
_TEXT_MIMETYPES = {
    "application/json", "application/xml", "application/x-yaml", "application/yaml",
    "application/javascript", "application/x-sh", "application/sql", "application/toml",
}  # fmt: skip
# What to call files the bot cannot read, by Slack's `filetype` or the name's ending.
_DESCRIPTIONS = {
    "zip": "a ZIP archive", "gzip": "a gzip archive", "gz": "a gzip archive",
    "tar": "a tar archive", "7z": "a 7-Zip archive", "rar": "a RAR archive",
    "docx": "a Word document", "doc": "a Word document", "xlsx": "an Excel spreadsheet",
    "xls": "an Excel spreadsheet", "pptx": "a PowerPoint presentation",
    "ppt": "a PowerPoint presentation", "odt": "an OpenDocument text", "key": "a Keynote file",
    "pages": "a Pages document", "numbers": "a Numbers spreadsheet", "heic": "a HEIC photo",
    "tiff": "a TIFF image", "bmp": "a BMP image", "psd": "a Photoshop file",
    "mp4": "a video", "mov": "a video", "webm": "a video", "mp3": "an audio file",
    "m4a": "an audio file", "wav": "an audio file", "binary": "a binary file",
    "exe": "a program", "dmg": "a disk image", "apk": "an Android package",
    "gdoc": "a Google Docs link", "gsheet": "a Google Sheets link", "gpres": "a Google Slides link",
}  # fmt: skip


@dataclass(frozen=True)
class SlackFile:
    """One file of a message, as Slack's file object describes it (no content)."""

    id: str
    name: str
    mimetype: str = ""
    filetype: str = ""
    pretty_type: str = ""
    size: int | None = None  # as Slack declares it; the download checks it again
    url: str | None = None  # `url_private_download` (or `url_private`)
    # Slack Connect and some mentions give only {"id", "file_access": "check_file_info"}:
    # the rest is to be read with files.info.
    needs_info: bool = False
    gone: bool = False  # deleted (mode "tombstone") or hidden by the plan's limits

    @classmethod
    def parse(cls, raw: object) -> SlackFile | None:
        """The file of one entry of a message's `files`; None when it is not a file object."""
        if not isinstance(raw, dict):
            return None
        file_id = raw.get("id")
        if not isinstance(file_id, str) or not file_id:
            return None
        size = raw.get("size")
        url = raw.get("url_private_download") or raw.get("url_private")
        return cls(
            id=file_id[:32],
            name=_text(raw.get("name")) or _text(raw.get("title")) or file_id,
            mimetype=_text(raw.get("mimetype")).lower(),
            filetype=_text(raw.get("filetype")).lower(),
            pretty_type=_text(raw.get("pretty_type")),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            url=url if isinstance(url, str) and url else None,
            needs_info=raw.get("file_access") == "check_file_info",
            gone=raw.get("mode") in ("tombstone", "hidden_by_limit"),
        )

    @property
    def kind(self) -> FileKind:
        """How the bot reads it, by what Slack says it is (the bytes are checked later)."""
        ending = self.ending
        if self.mimetype in IMAGE_TYPES or (
            not self.mimetype and {self.filetype, ending} & _IMAGE_FILETYPES
        ):
            return FileKind.IMAGE
        if self.mimetype == "application/pdf" or "pdf" in (self.filetype, ending):
            return FileKind.PDF
        if (
            self.mimetype.startswith("text/")
            or self.mimetype in _TEXT_MIMETYPES
            or self.filetype in _TEXT_FILETYPES
            or ending in _TEXT_FILETYPES
        ):
            return FileKind.TEXT
        return FileKind.OTHER

    @property
    def ending(self) -> str:
        """The name's extension, lower case, without the dot ("" when it has none)."""
        stem, dot, ending = self.name.rpartition(".")
        return ending.lower() if dot and stem else ""

    @property
    def known_binary(self) -> bool:
        """Whether its type alone says it is a kind the bot cannot read (a ZIP, a video)."""
        return bool({self.filetype, self.ending} & _DESCRIPTIONS.keys()) or (
            self.mimetype.partition("/")[0] in ("video", "audio")
        )

    @property
    def described(self) -> str:
        """What the file is, in words: "a ZIP archive", "a PDF", "an image"."""
        for key in (self.filetype, self.ending):
            if key in _DESCRIPTIONS:
                return _DESCRIPTIONS[key]
        kind = self.kind
        if kind is FileKind.PDF:
            return "a PDF"
        if kind is FileKind.IMAGE:
            return "an image"
        if kind is FileKind.TEXT:
            return "a text file"
        if self.pretty_type:
            return f"a {self.pretty_type} file"
        major = self.mimetype.partition("/")[0]
        if major in ("video", "audio"):
            return "a video" if major == "video" else "an audio file"
        return "a file of a kind I cannot read"


def parse_files(raw: Any) -> tuple[SlackFile, ...]:
    """The files of a message event's `files` list (entries that are not files are skipped)."""
    if not isinstance(raw, list):
        return ()
    parsed = (SlackFile.parse(entry) for entry in raw[:20])
    seen: set[str] = set()
    files = []
    for file in parsed:
        if file is not None and file.id not in seen:
            seen.add(file.id)
            files.append(file)
    return tuple(files)


def _text(value: object) -> str:
    return value.strip()[:255] if isinstance(value, str) else ""
