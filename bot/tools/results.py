"""What a tool call gave: the text the model reads back, and the row that accounts for it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

import httpx2
import mcp_types

# A tool result longer than this is cut before the model reads it (and said to be cut): one
# chatty tool must not fill the model's context.
MAX_RESULT_CHARS = 16_000
# A URL kept to its scheme and host: no `user:password@`, path or query reaches a log line.
_URL_TAIL = re.compile(r"(https?://)(?:[^\s/?#@]*@)?([^\s/?#]+)[^\s]*")


class Outcome(StrEnum):
    """How a tool call ended."""

    OK = "ok"
    ERROR = "error"  # the tool said it failed, or it could not be run
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # never run (no such tool, the turn's limit or time): not recorded


@dataclass(frozen=True)
class CallRecord:
    """One tool call as the ledger records it (content only where content is kept)."""

    tool: str  # its name on its server
    server: str
    outcome: Outcome
    duration: float  # seconds
    arguments: str
    result: str


@dataclass(frozen=True)
class ToolResult:
    """A finished call: what goes back to the model as the tool message of `call_id`."""

    call_id: str
    name: str  # as offered to the model
    text: str
    record: CallRecord


def result_text(result: mcp_types.CallToolResult) -> tuple[str, bool]:
    """The text of a tool's result for the model, and whether the tool said it failed."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[a file: {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[a link: {block.uri}]")
        else:
            parts.append(f"[{block.type} content, not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = cut("\n".join(parts) or "(the tool returned nothing)")
    if result.is_error:
        text = f"The tool reported an error: {text}"
    return text, bool(result.is_error)


def cut(text: str) -> str:
    """A tool's words for the model and the ledger, at most MAX_RESULT_CHARS of them."""
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n[cut: {len(text):,} characters in all]"


def describe(exc: BaseException) -> str:
    """A failure in words fit for logs and `check`: no URL paths or queries, no bodies."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        if status in (401, 403):
            return f"it refused our credentials (HTTP {status}); check the headers' values"
        return f"it answered HTTP {status}"
    if isinstance(exc, httpx2.ConnectError):
        return "cannot connect"
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return "it did not answer in time"
    if isinstance(exc, FileNotFoundError):
        return "its command was not found"
    message = _URL_TAIL.sub(r"\1\2/…", str(exc))[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
