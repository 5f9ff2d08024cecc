"""The MCP sessions against real servers: the SDK's own, over streamable HTTP and over stdio."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import pytest

from bot.tools.config import HttpServer, StdioServer
from bot.tools.results import Outcome, ToolResult
from bot.tools.servers import ToolServers
from bot.tools.tool_names import OfferedTool
from tests.fakes.mcp_server import STDIO_SERVER, LoopbackMCP, free_port


@pytest.fixture
def started() -> Iterator[Callable[..., ToolServers]]:
    opened: list[ToolServers] = []

    def start(*entries: HttpServer | StdioServer) -> ToolServers:
        servers = ToolServers(entries, first_retry=0.05, connect_timeout=5)
        opened.append(servers)
        servers.start()
        assert servers.wait_tried(10)
        return servers

    yield start
    for servers in opened:
        servers.close()


def stdio(name: str = "runbooks", **env: str) -> StdioServer:
    return StdioServer(name, sys.executable, (str(STDIO_SERVER), name), env)


def call(servers: ToolServers, name: str, arguments: str = "{}", timeout: float = 5) -> ToolResult:
    tool = {tool.name: tool for tool in servers.tools()}[name]
    return servers.submit(tool, "call", arguments, timeout).result(timeout + 5)


def until(check: Callable[[], bool], timeout: float = 10) -> None:
    ends = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < ends, "timed out"
        time.sleep(0.01)


def test_two_servers_one_tool_name_stdio_env_and_a_changed_tool_list(
    started: Callable[..., ToolServers], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SECRET_FOR_TEST", "not for tools")
    with LoopbackMCP("orders") as web:
        servers = started(HttpServer("orders", web.url), stdio(GIVEN="1"))
        names = {tool.name: tool for tool in servers.tools()}
        # Both offer lookup_order: each is named after its server; `environment` is stdio's only.
        assert {"orders_lookup_order", "runbooks_lookup_order", "environment"} <= set(names)
        assert names["orders_lookup_order"].remote == "lookup_order"
        assert names["runbooks_lookup_order"].server == "runbooks"
        for name in ("orders_lookup_order", "runbooks_lookup_order"):
            result = call(servers, name, '{"order_id": "5"}')
            assert (result.text, result.record.outcome) == ("Order 5 shipped on 2026-12-01.", "ok")

        seen = set(call(servers, "environment").text.split(","))
        assert "GIVEN" in seen and "PATH" in seen
        assert "SWITCHBOARD_SECRET_FOR_TEST" not in seen  # only what its entry names, and PATH…

        assert call(servers, "orders_add_tool", '{"name": "find_ticket"}').text == "added"
        until(lambda: "find_ticket" in {tool.name for tool in servers.tools()})
        assert call(servers, "find_ticket").text == "find_ticket ran"
        assert servers.sessions_opened == 2  # no session rebuilt for any of these calls


def test_a_server_down_at_start_is_retried_and_one_that_dies_is_reconnected(
    started: Callable[..., ToolServers],
) -> None:
    web = LoopbackMCP("orders", port=free_port())
    servers = started(HttpServer("orders", web.url), stdio())
    (orders, runbooks) = servers.states()
    assert not orders.up and orders.problem == "cannot connect"
    assert runbooks.up and len(runbooks.tools) == 6
    assert {tool.server for tool in servers.tools()} == {"runbooks"}

    with web:
        until(lambda: servers.states()[0].up)
        assert call(servers, "orders_lookup_order", '{"order_id": "9"}').record.outcome == "ok"

    opened = servers.sessions_opened
    died = call(servers, "crash")  # the stdio server's process ends under the call
    assert died.record.outcome is Outcome.ERROR
    # It may have run: not sent again, and the model is told in words.
    assert died.text == "The runbooks server closed the connection while the tool ran."
    # The next call waits for the new session (opened at once), within its timeout.
    assert call(servers, "runbooks_lookup_order", '{"order_id": "3"}').record.outcome == "ok"
    assert servers.sessions_opened == opened + 1


def test_a_hanging_tool_times_out_and_bad_arguments_are_not_run(
    started: Callable[..., ToolServers],
) -> None:
    with LoopbackMCP("orders") as web:
        servers = started(HttpServer("orders", web.url))
        hung = call(servers, "hang", "{}", timeout=0.2)
        assert hung.record.outcome is Outcome.TIMEOUT
        assert hung.text == "The tool did not answer within 0.2 seconds; it was stopped."
        bad = call(servers, "lookup_order", "[1, 2")
        assert bad.record.outcome is Outcome.ERROR
        assert bad.text == "The arguments were not a JSON object; nothing was run."
        # The server is still fine after the cancelled call.
        assert call(servers, "lookup_order", '{"order_id": "1"}').record.outcome is Outcome.OK


def test_offered_names_fit_openai() -> None:
    import mcp_types

    from bot.tools.tool_names import offer

    def tool(name: str) -> mcp_types.Tool:
        return mcp_types.Tool(name=name, input_schema={"type": "object"})

    offered: tuple[OfferedTool, ...] = offer(
        [("a.b", [tool("get/item"), tool("x" * 80)]), ("c", [tool("get/item")])]
    )
    assert [o.name for o in offered] == ["a_b_get_item", "x" * 64, "c_get_item"]
    assert [o.remote for o in offered] == ["get/item", "x" * 80, "get/item"]
