"""The MCP_SERVERS file: its shape, `${VAR}` expansion, errors in words; and `check`'s lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.shell.settings import Settings, SettingsError
from bot.tools.config import HttpServer, StdioServer, ToolConfigError, parse_servers
from tests.bot.shell.test_cli import ready as ready  # the fixture
from tests.bot.shell.test_cli import run_bot
from tests.fakes.mcp_server import STDIO_SERVER, LoopbackMCP


def test_both_kinds_and_variables_expanded(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "orders": {"url": "https://mcp.example.com/mcp?k=1",
                   "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"}},
        "wiki": {"command": "uvx", "args": ["wiki-mcp", "--ro"], "env": {"TOKEN": "${WIKI}x"}},
    }}))  # fmt: skip
    settings = Settings.from_env(
        {"MCP_SERVERS": str(path), "ORDERS_TOKEN": "s3cret", "WIKI": "w"}, env_file=None
    )
    orders, wiki = settings.mcp_servers
    assert orders == HttpServer("orders", "https://mcp.example.com/mcp?k=1",
                                {"Authorization": "Bearer s3cret"})  # fmt: skip
    assert orders.where == "https://mcp.example.com"
    assert wiki == StdioServer("wiki", "uvx", ("wiki-mcp", "--ro"), {"TOKEN": "wx"})
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(orders)
    assert (settings.max_tool_calls, settings.mcp_tool_timeout) == (8, 30.0)


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ([], "must hold an object"),
        ({"servers": {}}, "must hold an object"),
        ({"mcpServers": {"a b": {"url": "http://x"}}}, "server name 'a b'"),
        ({"mcpServers": {"a": {"url": "http://x", "command": "y"}}}, 'exactly one of "url"'),
        ({"mcpServers": {"a": {"url": "ftp://x"}}}, '"url" must be an http'),
        ({"mcpServers": {"a": {"command": "y", "args": "z"}}}, '"args" must be a list'),
        ({"mcpServers": {"a": {"url": "http://x", "headers": {"H": 1}}}}, '"headers" must map'),
        ({"mcpServers": {"a": {"url": "http://x", "timeout": 3}}}, "unknown key 'timeout'"),
        (
            {"mcpServers": {"a": {"command": "y", "env": {"T": "${NOPE}"}}}},
            'server "a": env "T" uses ${NOPE}, which is not set',
        ),
    ],
)
def test_a_bad_file_is_said_in_words(document: object, said: str) -> None:
    with pytest.raises(ToolConfigError) as error:
        parse_servers(document, {})
    assert said in str(error.value)


def test_settings_name_the_variable(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SettingsError, match=r"^MCP_SERVERS: .*bad.json is not JSON"):
        Settings.from_env({"MCP_SERVERS": str(tmp_path / "bad.json")}, env_file=None)
    with pytest.raises(SettingsError, match=r"^MCP_SERVERS: .*nowhere.json does not exist"):
        Settings.from_env({"MCP_SERVERS": str(tmp_path / "nowhere.json")}, env_file=None)


def test_check_prints_one_line_per_server(
    tmp_path: Path,
    ready: dict[str, str],
    empty_db_url: str,
) -> None:
    with LoopbackMCP("orders") as web:
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"mcpServers": {
            "orders": {"url": web.url, "headers": {"Authorization": "Bearer ${TOKEN}"}},
            "runbooks": {"command": sys.executable, "args": [str(STDIO_SERVER)]},
            "gone": {"url": "http://127.0.0.1:1/mcp"},
        }}))  # fmt: skip
        env = ready | {"DATABASE_URL": empty_db_url, "MCP_SERVERS": str(path), "TOKEN": "t0k"}
        result = run_bot("check", env=env, cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert f"OK   MCP server orders (http://127.0.0.1:{web.port}): 4 tools" in lines
    assert f"OK   MCP server runbooks ({Path(sys.executable).name}): 6 tools" in lines
    assert "FAIL MCP server gone (http://127.0.0.1:1): cannot connect" in lines
    assert "t0k" not in result.stdout + result.stderr
    assert result.returncode == 1
