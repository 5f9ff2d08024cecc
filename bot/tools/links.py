"""A server's session as the loop holds it, and calls made on it.

Everything here runs on the loop thread of `servers.ToolServers`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp import Client, MCPError

from bot.tools.config import ServerEntry
from bot.tools.results import CallRecord, Outcome, ToolResult, cut, describe, result_text
from bot.tools.tool_names import OfferedTool

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """What one server looks like now: up with its tools, or down and why."""

    name: str
    where: str
    up: bool = False
    tried: bool = False  # a first attempt has ended, one way or the other
    tools: tuple[mcp_types.Tool, ...] = ()
    problem: str | None = None
    sessions: int = 0  # sessions opened so far


@dataclass
class Link:
    """A server's session as the loop holds it."""

    entry: ServerEntry
    state: ServerState
    client: Client | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    broken: asyncio.Event = field(default_factory=asyncio.Event)
    stale: asyncio.Event = field(default_factory=asyncio.Event)
    # Resolved when the current session ends: calls waiting on it stop waiting.
    lost: asyncio.Future[None] | None = None
    broken_by: str | None = None  # why the session was given up (a failed ping, a call)


class Unreachable(Exception):
    """The call could not be made: the server is down, or its session was lost under it.

    `sent`: the call may have reached the server (its session ended while it ran), so it is
    not sent again; a call whose session was already dead is sent once more on a new one.
    """

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


async def call_tool(
    link: Link | None, tool: OfferedTool, call_id: str, arguments: str, timeout: float
) -> ToolResult:
    """Call `tool` on `link`'s session within `timeout`; how it ended, never an exception."""
    started = time.monotonic()

    def result(outcome: Outcome, text: str) -> ToolResult:
        record = CallRecord(
            tool=tool.remote, server=tool.server, outcome=outcome,
            duration=time.monotonic() - started, arguments=arguments, result=text,
        )  # fmt: skip
        return ToolResult(call_id=call_id, name=tool.name, text=text, record=record)

    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return result(Outcome.ERROR, "The arguments were not a JSON object; nothing was run.")
    if link is None:
        return result(Outcome.ERROR, f"No server named {tool.server} is configured.")
    deadline = started + timeout
    try:
        for attempt in range(2):
            try:
                called = await _call_once(link, tool.remote, parsed, deadline)
            except Unreachable as exc:
                if exc.sent or attempt or time.monotonic() >= deadline:
                    return result(Outcome.ERROR, f"The {tool.server} server {exc}.")
                continue  # its session was dead before the call: once more on a new one
            text, failed = result_text(called)
            return result(Outcome.ERROR if failed else Outcome.OK, text)
    except TimeoutError:
        return result(
            Outcome.TIMEOUT,
            f"The tool did not answer within {timeout:g} seconds; it was stopped.",
        )
    except MCPError as exc:
        return result(Outcome.ERROR, cut(f"The tool failed: {exc.message}"))
    except Exception as exc:
        log.warning("MCP call of %s on %s failed: %s", tool.remote, tool.server, describe(exc))
        return result(Outcome.ERROR, f"The tool failed ({type(exc).__name__}).")
    raise AssertionError("unreachable")


async def _call_once(
    link: Link, name: str, arguments: dict[str, Any], deadline: float
) -> mcp_types.CallToolResult:
    left = deadline - time.monotonic()
    if not link.ready.is_set():
        try:
            await asyncio.wait_for(link.ready.wait(), max(0.0, left))
        except TimeoutError:
            raise Unreachable(f"is not reachable ({link.state.problem or 'down'})") from None
    client, lost = link.client, link.lost
    if client is None or lost is None:
        raise Unreachable("is not reachable")
    left = deadline - time.monotonic()
    call = asyncio.ensure_future(client.call_tool(name, arguments, read_timeout_seconds=left))
    waits: set[asyncio.Future[Any]] = {call, lost}
    done, _ = await asyncio.wait(waits, timeout=left, return_when="FIRST_COMPLETED")
    if call in done:
        try:
            return call.result()
        except MCPError as exc:
            if exc.code != mcp_types.CONNECTION_CLOSED:
                raise
            break_link(link, "it closed the connection")
            raise Unreachable("closed the connection while the tool ran", sent=True) from exc
        except (OSError, httpx2.TransportError, anyio.BrokenResourceError,
                anyio.ClosedResourceError, anyio.EndOfStream) as exc:  # fmt: skip
            break_link(link, describe(exc))
            # Only a connection never made is sure not to have carried the call: after any
            # other failure the tool may have run, and running it again could do twice what
            # it does (an order placed, a ticket filed).
            sent = not isinstance(exc, httpx2.ConnectError | ConnectionRefusedError)
            raise Unreachable(f"could not be reached ({describe(exc)})", sent=sent) from exc
    call.cancel()
    if lost in done:
        raise Unreachable("lost its connection while the tool ran", sent=True)
    raise TimeoutError


def break_link(link: Link, why: str) -> None:
    """Give up the session: later calls wait for the next one, opened at once."""
    if not link.broken.is_set():
        log.info("MCP server %s: session given up (%s)", link.entry.name, why)
        link.broken_by = why
    link.ready.clear()
    link.broken.set()
