"""The tools offered to the model: MCP tools named uniquely across servers, in OpenAI's shape."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types

# OpenAI's function names: ^[a-zA-Z0-9_-]{1,64}$.
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64
MAX_DESCRIPTION = 1_024


@dataclass(frozen=True)
class OfferedTool:
    """A tool as the model sees it (`name`), and where it really is (`server`, `remote`)."""

    name: str
    server: str
    remote: str
    description: str
    parameters: dict[str, Any]
    title: str  # for people: the tool's title, or its name


def offer(servers: Sequence[tuple[str, Sequence[mcp_types.Tool]]]) -> tuple[OfferedTool, ...]:
    """Every server's tools, named as offered: its own name where no other server uses it,
    else prefixed with its server's name (`orders_lookup`, `crm_lookup`)."""
    counts = Counter(_clean(tool.name) for _, tools in servers for tool in tools)
    taken: set[str] = set()
    offered: list[OfferedTool] = []
    for server, tools in servers:
        for tool in tools:
            base = _clean(tool.name)
            name = base if counts[base] == 1 else _clean(f"{server}_{base}")
            unique, n = name, 2
            while unique in taken:
                suffix = f"_{n}"
                unique, n = name[: MAX_NAME - len(suffix)] + suffix, n + 1
            taken.add(unique)
            schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
            offered.append(
                OfferedTool(
                    name=unique,
                    server=server,
                    remote=tool.name,
                    description=(tool.description or tool.title or tool.name)[:MAX_DESCRIPTION],
                    parameters={"type": "object", "properties": {}} | schema,
                    title=tool.title or tool.name,
                )
            )
    return tuple(offered)


def _clean(name: str) -> str:
    return (_NOT_ALLOWED.sub("_", name) or "tool")[:MAX_NAME]
