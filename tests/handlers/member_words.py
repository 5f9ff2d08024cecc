"""What members read: every string of a Slack payload, checked for operators' setting names,
and written to a file for blockkit_render.py when BLOCKKIT_DUMP names a directory."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

_ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


@functools.cache
def setting_names() -> frozenset[str]:
    """Every setting `.env.example` documents (commented out or not)."""
    names = re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", _ENV_EXAMPLE.read_text(), re.MULTILINE)
    return frozenset(names)


def visible_strings(payload: Any) -> list[str]:
    """The strings of a message, view or response body that Slack shows."""
    found: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in ("text", "markdown_text", "title", "message") and isinstance(value, str):
                found.append(value)
            elif key not in ("action_id", "block_id", "value", "url", "type"):
                found += visible_strings(value)
    elif isinstance(payload, list):
        for item in payload:
            found += visible_strings(item)
    elif isinstance(payload, str):
        found.append(payload)
    return found


def settings_named(payload: Any) -> list[str]:
    """The setting names that occur in what a payload shows (empty when it reads plainly)."""
    words = set(re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", " ".join(visible_strings(payload))))
    return sorted(words & setting_names())
