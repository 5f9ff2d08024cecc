"""The MCP_SERVERS file: which MCP servers offer tools, in the shape other assistants use.

```json
{"mcpServers": {
  "orders": {"url": "https://mcp.example.com/mcp",
             "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"}},
  "runbooks": {"command": "uvx", "args": ["runbooks-mcp"], "env": {"WIKI": "${WIKI_TOKEN}"}}
}}
```

`${VAR}` in a header or env value is replaced by that variable (from the environment or
`.env`), so secrets stay out of the file. Every error names the server and the key, never a
value (a value may hold a secret).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ToolConfigError(ValueError):
    """The MCP_SERVERS file cannot be used; the message says where and what to change."""


@dataclass(frozen=True)
class HttpServer:
    """A server reached over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        """Where it is, fit for logs: the URL without credentials, query or path details."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


@dataclass(frozen=True)
class StdioServer:
    """A server run as a child process, spoken to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    # Only these reach the child, besides what it needs to run (PATH, HOME, …: the SDK's list).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        """The command it runs (its arguments may hold secrets: left out)."""
        return Path(self.command).name


ServerEntry = HttpServer | StdioServer


def load_servers(path: str | None, variables: Mapping[str, str]) -> tuple[ServerEntry, ...]:
    """The servers the file at `path` names (none when `path` is None or empty)."""
    if not path:
        return ()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolConfigError(f"{path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolConfigError(f"{path} cannot be read: {type(exc).__name__}.") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ToolConfigError(f"{path} is not JSON: {exc}.") from None
    return parse_servers(document, variables, source=path)


def parse_servers(
    document: Any, variables: Mapping[str, str], *, source: str = "the file"
) -> tuple[ServerEntry, ...]:
    """The servers of a parsed MCP_SERVERS document."""
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ToolConfigError(
            f'{source} must hold an object {{"mcpServers": {{"NAME": {{"url": …}} or '
            '{"command": …}}}.'
        )
    return tuple(_entry(name, entry, variables) for name, entry in servers.items())


def _entry(name: str, entry: Any, variables: Mapping[str, str]) -> ServerEntry:
    if not _NAME.match(name):
        raise ToolConfigError(
            f"server name {name[:40]!r}: use letters, digits, '_', '-' or '.' (at most 64)."
        )
    if not isinstance(entry, dict):
        raise ToolConfigError(f'server "{name}" must be an object with "url" or "command".')
    if ("url" in entry) == ("command" in entry):
        raise ToolConfigError(f'server "{name}" needs exactly one of "url" and "command".')
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ToolConfigError(f'server "{name}": "url" must be an http:// or https:// URL.')
        if not urlsplit(url).hostname:
            raise ToolConfigError(f'server "{name}": "url" has no host.')
        headers = _strings(name, "headers", entry.get("headers", {}), variables)
        _no_other_keys(name, entry, {"url", "headers", "type"})
        return HttpServer(name, url, headers)
    command = entry["command"]
    if not isinstance(command, str) or not command.strip():
        raise ToolConfigError(f'server "{name}": "command" must be a non-empty string.')
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ToolConfigError(f'server "{name}": "args" must be a list of strings.')
    env = _strings(name, "env", entry.get("env", {}), variables)
    _no_other_keys(name, entry, {"command", "args", "env", "type"})
    return StdioServer(name, command, tuple(args), env)


def _strings(name: str, key: str, values: Any, variables: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ToolConfigError(f'server "{name}": "{key}" must map names to strings.')
    expanded: dict[str, str] = {}
    for item, value in values.items():

        def variable(match: re.Match[str], item: str = item) -> str:
            found = variables.get(match.group(1))
            if found is None:
                raise ToolConfigError(
                    f'server "{name}": {key} "{item}" uses ${{{match.group(1)}}}, which is not '
                    "set: set it in .env or the environment."
                )
            return found

        expanded[item] = _VARIABLE.sub(variable, value)
    return expanded


def _no_other_keys(name: str, entry: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ToolConfigError(
            f'server "{name}": unknown key {", ".join(repr(k) for k in unknown)} (known: '
            f"{', '.join(sorted(known - {'type'}))})."
        )
