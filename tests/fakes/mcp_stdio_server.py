"""The test MCP server over stdio (run with `sys.executable`); also says what env it got."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from tests.fakes.mcp_server import build_server

server = build_server(sys.argv[1] if len(sys.argv) > 1 else "runbooks")


@server.tool()
def environment() -> str:
    """The names of the environment variables this server was given."""
    return ",".join(sorted(os.environ))


@server.tool()
def crash() -> str:
    """Ends this server's process at once (a server that dies mid-session)."""
    os._exit(3)


server.run("stdio")
