"""Real MCP servers for the tests, built with the SDK's own server (`MCPServer`, once FastMCP).

`LoopbackMCP` serves one over streamable HTTP on a loopback port (uvicorn in a thread) and
can be stopped and started again on the same port; `STDIO_SERVER` is a script that serves the
same tools over stdio, run with `sys.executable`.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

STDIO_SERVER = Path(__file__).with_name("mcp_stdio_server.py")


def build_server(name: str = "orders") -> MCPServer:
    """A server with the tools the tests call."""
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id: its status."""
        return f"Order {order_id} shipped on 2026-12-01."

    @server.tool()
    async def hang(seconds: float = 3600.0) -> str:
        """Wait (a tool that never answers in time)."""
        await anyio.sleep(seconds)
        return "woke up"

    @server.tool()
    def fail(why: str) -> str:
        """Always fails."""
        raise ValueError(why)

    @server.tool()
    async def add_tool(name: str, ctx: Context) -> str:
        """Adds a tool called `name`, and says the tool list changed."""
        server.add_tool(lambda: f"{name} ran", name=name, description=f"The {name} tool.")
        await ctx.notify_tools_changed()
        return "added"

    return server


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackMCP:
    """An MCP server over streamable HTTP on 127.0.0.1, in a thread of this process."""

    def __init__(self, name: str = "orders", *, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.server = build_server(name)
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> LoopbackMCP:
        """Serve (again, on the same port)."""
        app = self.server.streamable_http_app(host="127.0.0.1")
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=1,  # a client's open listen stream must not hold it
        )  # fmt: skip
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, daemon=True)
        self._thread.start()
        ends = time.monotonic() + 10
        while not self._uvicorn.started:
            if time.monotonic() > ends or not self._thread.is_alive():
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (connections close; the port is free again)."""
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
        self._uvicorn = self._thread = None

    def __enter__(self) -> LoopbackMCP:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
