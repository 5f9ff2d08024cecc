"""MCP sessions: one per server, held by one event loop thread and shared by every turn.

The `mcp` SDK is async and a turn runs on a thread of its own. One daemon thread runs an
asyncio loop that owns every session: each server has a supervisor task that opens its
session at start, lists its tools, refreshes them when the server says they changed, pings it
now and then, and when the session fails opens a new one (backing off while the server stays
down; the bot never waits for it). Turn threads hand calls to the loop and wait on futures.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import AsyncExitStack, suppress
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bot.tools.config import HttpServer, ServerEntry
from bot.tools.links import Link, ServerState, break_link, call_tool
from bot.tools.results import ToolResult, describe
from bot.tools.tool_names import OfferedTool, offer

log = logging.getLogger(__name__)

# A server that is down is tried again after 0.5 s, then twice as long each time, up to 30 s.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0
# A session idle this long is pinged: a server that died is noticed before a turn needs it.
PING_EVERY = 20.0
# Seconds to open a session (connect, handshake, first tool list) before it counts as down.
CONNECT_TIMEOUT = 10.0
MAX_PAGES = 20


class ToolServers:
    """The MCP servers of a process: their sessions, their tools, and calls into them."""

    def __init__(
        self,
        entries: Sequence[ServerEntry],
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        first_retry: float = FIRST_RETRY,
    ) -> None:
        self._entries = tuple(entries)
        self._connect_timeout = connect_timeout
        self._first_retry = first_retry
        self._lock = threading.Lock()
        self._offered: tuple[OfferedTool, ...] = ()
        self._tried = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._links: dict[str, Link] = {}
        self._stopping: asyncio.Event | None = None
        self._supervisors: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()  # sessions not yet closed

    @property
    def configured(self) -> bool:
        """Whether any server is configured."""
        return bool(self._entries)

    def start(self) -> None:
        """Start the loop thread and open every server's session in the background."""
        if not self._entries or self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="switchboard-mcp", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result()

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        for entry in self._entries:
            link = Link(entry, ServerState(entry.name, entry.where))
            self._links[entry.name] = link
            self._supervisors.append(asyncio.create_task(self._supervise(link)))

    def wait_tried(self, timeout: float) -> bool:
        """Wait until every server had its first attempt (for `check` and tests)."""
        with self._tried:
            return self._tried.wait_for(
                lambda: all(link.state.tried for link in self._links.values()), timeout
            )

    def states(self) -> list[ServerState]:
        """Each server's state, in the file's order."""
        with self._lock:
            return [
                ServerState(**vars(self._links[entry.name].state))
                for entry in self._entries
                if entry.name in self._links
            ]

    @property
    def sessions_opened(self) -> int:
        """Sessions opened since start, over every server (each reconnection adds one)."""
        with self._lock:
            return sum(link.state.sessions for link in self._links.values())

    def tools(self) -> tuple[OfferedTool, ...]:
        """The tools the model may be offered now, named uniquely across servers."""
        with self._lock:
            return self._offered

    def submit(
        self, tool: OfferedTool, call_id: str, arguments: str, timeout: float
    ) -> Future[ToolResult]:
        """Start a call on the loop; its result (never an exception) when it ends."""
        assert self._loop is not None, "start() first"
        coroutine = call_tool(self._links.get(tool.server), tool, call_id, arguments, timeout)
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def close(self) -> None:
        """Close every session and stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=10)
        except Exception:
            log.warning("MCP sessions did not all close in time", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._thread = None

    async def _stop(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        for link in self._links.values():
            link.broken.set()
        await asyncio.wait([*self._supervisors, *self._closing], timeout=8)

    # --- the supervisor of one server ----------------------------------------------------
    async def _supervise(self, link: Link) -> None:
        assert self._stopping is not None
        delay = self._first_retry
        while not self._stopping.is_set():
            opened = link.state.sessions
            # The session ends when it fails or breaks; its closing (a stdio server's process
            # is waited for up to 2 s by the SDK) goes on beside the next session's opening.
            ended = asyncio.Event()
            session = asyncio.create_task(self._session(link, ended))
            session.add_done_callback(functools.partial(_set, ended))
            self._closing.add(session)
            session.add_done_callback(self._closed)
            await ended.wait()
            failure = session.exception() if session.done() and not session.cancelled() else None
            if failure is not None:
                self._down(link, describe(failure))
            elif self._stopping.is_set():
                self._down(link, None)
            else:
                self._down(link, link.broken_by or "the session ended")
            link.broken_by = None
            if link.state.sessions > opened:
                delay = self._first_retry  # it was up: try again soon
            if self._stopping.is_set():
                return
            level = logging.INFO if link.state.sessions > opened else logging.DEBUG
            log.log(level, "MCP server %s is down (%s); retrying in %.1f s",
                    link.entry.name, link.state.problem, delay)  # fmt: skip
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, MAX_RETRY)

    def _closed(self, session: asyncio.Task[None]) -> None:
        self._closing.discard(session)
        if not session.cancelled() and session.exception() is not None:
            log.debug("an MCP session ended with %s", describe(session.exception() or Exception()))

    async def _session(self, link: Link, ended: asyncio.Event) -> None:
        async def on_message(message: IncomingMessage) -> None:
            # Servers of the 2025 protocol send this unasked; 2026 ones through `listen`.
            if isinstance(message, mcp_types.ToolListChangedNotification):
                link.stale.set()

        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                await self._client(link.entry, on_message, stack)
            )
            tools = await self._list(client)
            with self._lock:
                link.client = client
                link.state.up, link.state.problem, link.state.tools = True, None, tools
                link.state.sessions += 1
                self._reoffer()
            link.broken.clear()
            link.lost = asyncio.get_running_loop().create_future()
            link.ready.set()
            self._tried_once(link)
            log.info("MCP server %s: %d tools", link.entry.name, len(tools))
            async with anyio.create_task_group() as tasks:
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    tasks.start_soon(self._listen, link, client)
                tasks.start_soon(self._refresh, link, client)
                tasks.start_soon(self._ping, link, client)
                await link.broken.wait()
                ended.set()
                tasks.cancel_scope.cancel()

    async def _client(
        self,
        entry: ServerEntry,
        on_message: MessageHandlerFnT,
        stack: AsyncExitStack,
    ) -> Client:
        server: Any
        if isinstance(entry, HttpServer):
            # Our own HTTP client, for the headers; the SDK's timeouts otherwise.
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(entry.headers),
                    timeout=httpx2.Timeout(self._connect_timeout, read=300.0),
                )
            )
            server = streamable_http_client(entry.url, http_client=http)
        else:
            server = StdioServerParameters(
                command=entry.command, args=list(entry.args), env=dict(entry.env)
            )
        return Client(
            server,
            read_timeout_seconds=self._connect_timeout,
            message_handler=on_message,
            cache=None,  # the tool list is cached here, refreshed when the server says so
        )

    async def _list(self, client: Client) -> tuple[mcp_types.Tool, ...]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tuple(tools)

    async def _listen(self, link: Link, client: Client) -> None:
        """Change events of a 2026 server, for as long as the session lasts. A stream that
        drops (an idle read timing out) is opened again, and the list read again, since
        events may have been missed; a server that never takes one serves its tools anyway."""
        while True:
            opened = False
            try:
                async with client.listen(tools_list_changed=True) as events:
                    opened = True
                    async for _event in events:
                        link.stale.set()
            except Exception as exc:
                log.debug("MCP server %s: change events ended (%s)", link.entry.name, describe(exc))
            if not opened:
                return
            link.stale.set()
            await asyncio.sleep(FIRST_RETRY)

    async def _refresh(self, link: Link, client: Client) -> None:
        while True:
            await link.stale.wait()
            link.stale.clear()
            try:
                tools = await self._list(client)
            except Exception as exc:
                break_link(link, f"listing its tools failed: {describe(exc)}")
                return
            with self._lock:
                link.state.tools = tools
                self._reoffer()
            log.info("MCP server %s changed its tools: %d now", link.entry.name, len(tools))

    async def _ping(self, link: Link, client: Client) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            try:
                with anyio.fail_after(self._connect_timeout):
                    await client.send_ping()
            except Exception as exc:
                break_link(link, f"it did not answer a ping: {describe(exc)}")
                return

    def _down(self, link: Link, problem: str | None) -> None:
        link.ready.clear()
        if link.lost is not None and not link.lost.done():
            link.lost.set_result(None)
        with self._lock:
            link.client = None
            link.state.up = False
            link.state.problem = problem
        self._tried_once(link)

    def _tried_once(self, link: Link) -> None:
        with self._tried:
            link.state.tried = True
            self._tried.notify_all()

    def _reoffer(self) -> None:
        """Name every known tool uniquely (called with the lock held)."""
        by_server = {name: link.state.tools for name, link in self._links.items()}
        self._offered = offer([(e.name, by_server.get(e.name, ())) for e in self._entries])


def _set(event: asyncio.Event, _task: asyncio.Task[None]) -> None:
    event.set()
