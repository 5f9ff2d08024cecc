"""The model's Markdown as Slack draws it, rewritten while it streams.

Slack's `markdown_text` (chat.startStream/appendStream/stopStream, chat.postMessage) draws
standard Markdown: bold, italics, strikethrough, inline code, fenced code, links, lists and
quotes pass through as the model wrote them. It draws no table (a GFM table arrives as its
raw pipes), and headings are safest as bold lines (the `markdown` block draws every level at
one size; bold reads the same wherever the text goes, updates in place included). So:

- a heading line becomes a bold line;
- a table is held back until it ends, then written as an aligned code block in its place, or,
  when it is the last thing in the reply, handed over (`Tail.table`) for a `table` block on the
  reply's final `chat.stopStream` (up to Slack's 100 rows and 20 columns);
- a fenced code block passes through untouched (its language tag dropped: Slack highlights
  nothing), and nothing inside it is rewritten.

Text is passed on as soon as it is known not to start a heading, a table or a fence: only a
line that starts with `#`, `|` or three backticks (or only spaces so far) waits for its end.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

# Slack's table block: at most 100 rows of at most 20 cells (docs.slack.dev, table block).
MAX_TABLE_ROWS = 100
MAX_TABLE_COLUMNS = 20
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_DELIMITER_CELL = re.compile(r"^\s*(:?)-{1,}(:?)\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_EMPHASIS = re.compile(r"(\*\*|__|~~)(.+?)\1")
_CODE = re.compile(r"`([^`]*)`")

Align = Literal["left", "center", "right"]


@dataclass(frozen=True)
class Table:
    """A GFM table: its header, its rows (as wide as the header) and its columns' alignment."""

    header: list[str]
    rows: list[list[str]]
    align: list[Align]

    def code(self) -> str:
        """The table as an aligned code block (Markdown inside cells written plainly)."""
        cells = [[plain(c) for c in row] for row in [self.header, *self.rows]]
        widths = [max(_width(row[i]) for row in cells) for i in range(len(self.header))]
        rule = ["-" * w for w in widths]
        lines = [_code_row(row, widths, self.align) for row in [cells[0], rule, *cells[1:]]]
        return "```\n" + "\n".join(lines) + "\n```\n"

    def fits_block(self) -> bool:
        """Whether Slack's table block takes it."""
        return len(self.rows) + 1 <= MAX_TABLE_ROWS and len(self.header) <= MAX_TABLE_COLUMNS

    def block(self) -> dict[str, Any]:
        """The table as a Block Kit `table` block, raw-text cells."""

        def cell(text: str) -> dict[str, str]:
            # Slack refuses a cell of no characters.
            return {"type": "raw_text", "text": plain(text) or " "}

        return {
            "type": "table",
            "rows": [[cell(c) for c in row] for row in [self.header, *self.rows]],
            # Every entry carries `align`: some of Slack's paths refuse one without it.
            "column_settings": [{"align": a, "is_wrapped": True} for a in self.align],
        }


@dataclass(frozen=True)
class Tail:
    """What is left when the reply ends: text to send, and a last table for a block, if any."""

    text: str
    table: Table | None = None

    def as_text(self) -> str:
        """All of it as text (the table as a code block): where no block can go."""
        return self.text + (self.table.code() if self.table is not None else "")


class SlackMarkdown:
    """Rewrites a reply's Markdown for Slack as it streams in (`feed`), then ends it (`end`)."""

    def __init__(self) -> None:
        self._line = ""  # the line being written, as the model wrote it
        self._sent = 0  # how much of `_line` went out unchanged already
        self._fence: str | None = None  # the open code fence's marker
        self._table: list[str] = []  # table lines held back
        self._gap = ""  # blank lines held after them (the table may end the reply)
        self._written = False  # text went out: a table after it may become a block

    def feed(self, text: str) -> str:
        """Take the model's next text; what can be shown now."""
        out: list[str] = []
        while text:
            newline = text.find("\n")
            if newline < 0:
                self._line += text
                out.append(self._partial())
                break
            self._line += text[: newline + 1]
            text = text[newline + 1 :]
            out.append(self._complete(self._line))
            self._line, self._sent = "", 0
        shown = "".join(out)
        self._written = self._written or bool(shown.strip())
        return shown

    def end(self) -> Tail:
        """The reply is complete: what is left, and the table that ends it (for a block)."""
        out = ""
        if self._line:
            out = self._complete(self._line)
            self._line, self._sent = "", 0
        if not self._table:
            return Tail(out)
        # Only blank lines came after the held table: it ends the reply.
        table = self._parsed_table()
        if table is not None and self._written and table.fits_block():
            self._table, self._gap = [], ""
            return Tail(out, table)
        return Tail(out + self._close_table())

    # ----- one line -----------------------------------------------------------------------

    def _partial(self) -> str:
        """What of the unfinished line can go out now."""
        line = self._line
        if self._fence is not None or self._sent:
            return self._pass_rest()
        out = ""
        if self._table:
            if not line.strip() or (_is_row(line) and not self._gap):
                return ""  # maybe a blank line or the next row
            out = self._close_table()
        return out if _undecided(line) else out + self._pass_rest()

    def _pass_rest(self) -> str:
        rest = self._line[self._sent :]
        self._sent = len(self._line)
        return rest

    def _complete(self, line: str) -> str:
        """A whole line (its newline included, except at the very end of the reply)."""
        body = line.rstrip("\n").rstrip("\r")
        if self._fence is not None:
            closing = _FENCE.match(body)
            if (
                closing is not None
                and closing.group(1)[0] == self._fence[0]
                and len(closing.group(1)) >= len(self._fence)
                and not closing.group(2).strip()
            ):
                self._fence = None
            return line[self._sent :]
        if self._sent:
            return line[self._sent :]  # decided plain while it was written
        out = ""
        if self._table:
            if not body.strip():
                self._gap += line
                return ""
            if _is_row(body) and not self._gap:
                self._table.append(line)
                return ""
            out = self._close_table()
        if _is_row(body):
            self._table = [line]
            return out
        opening = _FENCE.match(body)
        if opening is not None and (opening.group(1)[0] == "~" or "`" not in opening.group(2)):
            self._fence = opening.group(1)
            # The language tag is dropped: Slack would show it as the code's first line.
            indent = body[: len(body) - len(body.lstrip())]
            return out + indent + opening.group(1) + line[len(body) :]
        heading = _HEADING.match(body)
        if heading is not None:
            words = _EMPHASIS.sub(r"\2", heading.group(2) or "").strip()
            return out + (f"**{words}**" if words else "") + line[len(body) :]
        return out + line

    def _close_table(self) -> str:
        """The held lines, as a code block when they make a table, else as they were."""
        table = self._parsed_table()
        held, gap = self._table, self._gap
        self._table, self._gap = [], ""
        return (table.code() if table is not None else "".join(held)) + gap

    def _parsed_table(self) -> Table | None:
        if len(self._table) < 2:
            return None
        header = _cells(self._table[0])
        delimiters = _cells(self._table[1])
        if len(delimiters) != len(header):
            return None
        align: list[Align] = []
        for cell in delimiters:
            match = _DELIMITER_CELL.match(cell)
            if match is None:
                return None
            left, right = bool(match.group(1)), bool(match.group(2))
            align.append("center" if left and right else "right" if right else "left")
        width = len(header)
        rows = [(_cells(line) + [""] * width)[:width] for line in self._table[2:]]
        return Table(header, rows, align)


def plain(text: str) -> str:
    """A cell's Markdown as plain text: emphasis and code marks off, links as `text (url)`."""
    text = _LINK.sub(_plain_link, text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _CODE.sub(r"\1", text)
    return text.replace("<br>", " ").strip()


def _plain_link(match: re.Match[str]) -> str:
    words, url = match.group(1).strip(), match.group(2)
    return url if words in ("", url) else f"{words} ({url})"


def _undecided(line: str) -> bool:
    """Whether an unfinished line may still turn out to be a heading or a table row."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    if not stripped:
        return True
    if stripped[0] == "|":
        return True
    if stripped[0] in "`~":
        return set(stripped[:3]) == {stripped[0]}  # maybe a code fence
    if stripped[0] == "#":
        hashes = len(stripped) - len(stripped.lstrip("#"))
        return hashes <= 6 and (hashes == len(stripped) or stripped[hashes] in " \t")
    return False


def _is_row(line: str) -> bool:
    """Whether a line (or the start of one) may be a table's row: it starts with a pipe."""
    stripped = line.lstrip(" ")
    return len(line) - len(stripped) <= 3 and stripped.startswith("|")


def _cells(line: str) -> list[str]:
    """The cells of a table row: split on pipes not escaped, the outer ones dropped."""
    body = line.strip()
    body = body.removeprefix("|")
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _width(text: str) -> int:
    """Columns `text` takes in a monospace font: wide (CJK, emoji) characters take two."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _code_row(cells: list[str], widths: list[int], align: list[Align]) -> str:
    padded = []
    for text, width, how in zip(cells, widths, align, strict=True):
        room = width - _width(text)
        if how == "right":
            padded.append(" " * room + text)
        elif how == "center":
            padded.append(" " * (room // 2) + text + " " * (room - room // 2))
        else:
            padded.append(text + " " * room)
    return "  ".join(padded).rstrip()
