"""Overhead of a tool call over the server's own time, and that sessions are reused.

A real MCP server (the SDK's `MCPServer`) serves a tool that works for `--work` ms and says
how long it worked, over streamable HTTP on loopback (uvicorn in this process) and over stdio
(a child process). Calls go through `ToolServers.submit` from a plain thread, as a turn makes
them, one after another. For each call: overhead = the caller's wall time from `submit` to the
result, less the time the tool said it worked. Prints medians and p90 per transport, the
sessions opened for all the calls, and for comparison a session opened for every call (what
keeping sessions saves).

    .venv/bin/python bench/mcp_tools.py [--calls 200] [--work 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--calls", type=int, default=200)
parser.add_argument("--work", type=float, default=5.0, help="ms the tool works for")
parser.add_argument("--fresh", type=int, default=20, help="calls with a session each")
parser.add_argument("--serve-stdio", action="store_true", help=argparse.SUPPRESS)
args = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402

from bot.tools.config import HttpServer, StdioServer  # noqa: E402
from bot.tools.servers import ToolServers  # noqa: E402
from tests.fakes.mcp_server import LoopbackMCP  # noqa: E402


def build(name: str) -> MCPServer:
    """The server: one tool that works for `ms` and says for how long (ns)."""
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def work(ms: float) -> str:
        """Work for `ms` milliseconds; say how long it took (ns)."""
        started = time.perf_counter_ns()
        while time.perf_counter_ns() - started < ms * 1e6:
            pass
        return str(time.perf_counter_ns() - started)

    return server


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"median {statistics.median(ordered):6.2f} ms, p90 {p90:6.2f} ms"


def measure(servers: ToolServers, name: str, calls: int) -> list[float]:
    tool = {t.name: t for t in servers.tools()}[name]
    overheads = []
    for n in range(calls + 5):
        started = time.perf_counter()
        result = servers.submit(tool, f"c{n}", f'{{"ms": {args.work}}}', 30).result()
        wall = time.perf_counter() - started
        assert result.record.outcome == "ok", result.text
        if n >= 5:  # warm-up
            overheads.append((wall - int(result.text) / 1e9) * 1000)
    return overheads


def one_session(url: str, calls: int) -> list[float]:
    """The SDK alone: one session, called from its own loop (no thread hop): the floor."""

    async def run() -> list[float]:
        walls = []
        async with Client(url) as client:
            for n in range(calls + 5):
                started = time.perf_counter()
                result = await client.call_tool("work", {"ms": args.work})
                text = result.content[0].text  # type: ignore[union-attr]  # a TextContent
                if n >= 5:
                    walls.append((time.perf_counter() - started - int(text) / 1e9) * 1000)
        return walls

    return asyncio.run(run())


def fresh_sessions(url: str, calls: int) -> list[float]:
    """A session opened and closed for every call: what keeping them saves."""

    async def run() -> list[float]:
        walls = []
        for _ in range(calls):
            started = time.perf_counter()
            async with Client(url) as client:
                result = await client.call_tool("work", {"ms": args.work})
            text = result.content[0].text  # type: ignore[union-attr]  # a TextContent here
            walls.append((time.perf_counter() - started - int(text) / 1e9) * 1000)
        return walls

    return asyncio.run(run())


def main() -> None:
    web = LoopbackMCP("http")
    web.server = build("http")
    with web:
        me = str(Path(__file__).resolve())
        servers = ToolServers(
            [
                HttpServer("http", web.url),
                StdioServer("stdio", sys.executable, (me, "--serve-stdio")),
            ]
        )
        servers.start()
        servers.wait_tried(30)
        names = {t.server: t.name for t in servers.tools()}
        http = measure(servers, names["http"], args.calls)
        stdio = measure(servers, names["stdio"], args.calls)
        opened = servers.sessions_opened
        servers.close()
        fresh = fresh_sessions(web.url, args.fresh)
        floor = one_session(web.url, args.calls)
    print(f"{args.calls} calls per transport, the tool working {args.work:g} ms each")
    print(f"overhead over the tool's own time, streamable HTTP: {summary(http)}")
    print(f"overhead over the tool's own time, stdio:           {summary(stdio)}")
    print(f"sessions opened for {2 * (args.calls + 5)} calls: {opened}")
    print(f"the SDK alone, one session, no thread hop (HTTP): {summary(floor)}")
    print(f"a session per call instead (HTTP, {args.fresh} calls): {summary(fresh)}")


if __name__ == "__main__":
    if args.serve_stdio:
        build("stdio").run("stdio")
    else:
        main()
