"""What Slack refuses in the Block Kit it is sent, as its reference documents it, so that a
wrong payload fails a test here rather than in a workspace.

Checked: the number of blocks (50 in a message, 100 in a view), header and section text
lengths, section fields, and the `table` block
(docs.slack.dev/reference/block-kit/blocks/table-block): one per message (more is
`invalid_attachments` with `only_one_table_allowed`), 1 to 100 rows of 1 to 20 cells, cells
`raw_text` (non-empty text), `raw_number` or `rich_text`, at most 20 `column_settings` of
`align` left/center/right and `is_wrapped`, and 10,000 characters across the cells of a
message. Slack documents the table for messages only: a view holding one is refused.
"""

from __future__ import annotations

from typing import Any

MESSAGE_METHODS = (
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "chat.stopStream",
    "response_url",
)
VIEW_METHODS = ("views.open", "views.publish", "views.update", "views.push")
MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS = 50, 100
MAX_TABLE_ROWS, MAX_TABLE_CELLS, MAX_TABLE_TEXT = 100, 20, 10_000
_CELL_TYPES = ("raw_text", "raw_number", "rich_text")
_COLUMN_KEYS = {"align", "is_wrapped"}


class Refused(Exception):
    """Slack's answer to the payload: an error code and what its response_metadata says."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error, *messages)
        self.error = error
        self.messages = list(messages)


def check(method: str, args: dict[str, Any]) -> None:
    """Raise Refused with Slack's error for a payload it would refuse; nothing otherwise."""
    if method in MESSAGE_METHODS:
        blocks = args.get("blocks")
        if isinstance(blocks, list):
            _check_blocks(blocks, limit=MAX_MESSAGE_BLOCKS, tables=True)
    elif method in VIEW_METHODS:
        view = args.get("view")
        if isinstance(view, dict) and isinstance(view.get("blocks"), list):
            _check_blocks(view["blocks"], limit=MAX_VIEW_BLOCKS, tables=False)


def _check_blocks(blocks: list[Any], *, limit: int, tables: bool) -> None:
    if len(blocks) > limit:
        raise Refused(
            "invalid_blocks", f"[ERROR] must be no more than {limit} items [json-pointer:]"
        )
    found = [block for block in blocks if isinstance(block, dict) and block.get("type") == "table"]
    if found and not tables:
        raise Refused("invalid_blocks", "[ERROR] unsupported type: table")
    if len(found) > 1:
        raise Refused("invalid_attachments", "only_one_table_allowed")
    text = 0
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise Refused("invalid_blocks", f"[ERROR] missing required field: type [/{index}]")
        kind = block["type"]
        if kind == "header":
            _text_at_most(block.get("text"), 150, index)
        elif kind == "section":
            _check_section(block, index)
        elif kind == "table":
            text += _check_table(block, index)
    if text > MAX_TABLE_TEXT:
        raise Refused("invalid_blocks", f"[ERROR] table cells hold {text} characters, over 10000")


def _text_at_most(obj: Any, limit: int, index: int) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
        raise Refused("invalid_blocks", f"[ERROR] missing text [/{index}]")
    if len(obj["text"]) > limit:
        raise Refused("invalid_blocks", f"[ERROR] must be less than {limit + 1} characters")


def _check_section(block: dict[str, Any], index: int) -> None:
    if "text" not in block and "fields" not in block:
        raise Refused("invalid_blocks", f"[ERROR] section needs text or fields [/{index}]")
    if "text" in block:
        _text_at_most(block["text"], 3000, index)
    fields = block.get("fields") or []
    if len(fields) > 10:
        raise Refused("invalid_blocks", f"[ERROR] at most 10 fields [/{index}/fields]")
    for field in fields:
        _text_at_most(field, 2000, index)


def _check_table(block: dict[str, Any], index: int) -> int:
    """The table's problems raised; else the characters of its cells."""
    where = f"[/{index}]"
    unknown = set(block) - {"type", "block_id", "rows", "column_settings"}
    if unknown:
        raise Refused("invalid_blocks", f"[ERROR] unknown fields {sorted(unknown)} {where}")
    rows = block.get("rows")
    if not isinstance(rows, list) or not rows:
        raise Refused("invalid_blocks", f"[ERROR] missing required field: rows {where}")
    if len(rows) > MAX_TABLE_ROWS:
        raise Refused("invalid_blocks", f"[ERROR] must be no more than 100 rows {where}")
    settings = block.get("column_settings")
    if settings is not None:
        if not isinstance(settings, list) or len(settings) > MAX_TABLE_CELLS:
            raise Refused("invalid_blocks", f"[ERROR] at most 20 column_settings {where}")
        for setting in settings:
            if setting is None:
                continue
            if not isinstance(setting, dict) or set(setting) - _COLUMN_KEYS:
                raise Refused("invalid_blocks", f"[ERROR] bad column_settings item {where}")
            if setting.get("align", "left") not in ("left", "center", "right"):
                raise Refused("invalid_blocks", f"[ERROR] bad align {where}")
            if not isinstance(setting.get("is_wrapped", False), bool):
                raise Refused("invalid_blocks", f"[ERROR] is_wrapped must be a boolean {where}")
    characters = 0
    for row in rows:
        if not isinstance(row, list) or not 1 <= len(row) <= MAX_TABLE_CELLS:
            raise Refused("invalid_blocks", f"[ERROR] a row holds 1 to 20 cells {where}")
        for cell in row:
            characters += _cell_text(cell, where)
    return characters


def _cell_text(cell: Any, where: str) -> int:
    if not isinstance(cell, dict) or cell.get("type") not in _CELL_TYPES:
        raise Refused(
            "invalid_blocks", f"[ERROR] a cell is raw_text, raw_number or rich_text {where}"
        )
    if cell["type"] == "raw_text":
        if not isinstance(cell.get("text"), str) or not cell["text"]:
            raise Refused("invalid_blocks", f"[ERROR] raw_text needs non-empty text {where}")
        return len(cell["text"])
    if cell["type"] == "raw_number":
        if not isinstance(cell.get("value"), int | float | str):
            raise Refused("invalid_blocks", f"[ERROR] raw_number needs a value {where}")
        return len(str(cell["value"]))
    elements = cell.get("elements")
    if not isinstance(elements, list) or not elements:
        raise Refused("invalid_blocks", f"[ERROR] rich_text needs elements {where}")
    return sum(_rich_length(element) for element in elements)


def _rich_length(element: Any) -> int:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        raise Refused("invalid_blocks", "[ERROR] a rich_text element needs a type")
    inner = element.get("elements")
    if isinstance(inner, list):
        return sum(_rich_length(each) for each in inner)
    return len(
        str(element.get("text") or element.get("user_id") or element.get("channel_id") or "")
    )
