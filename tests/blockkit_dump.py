"""Block Kit payloads written to files for people to look at (rendered with the shared
blockkit_render.py): set BLOCKKIT_DUMP to a directory and run the tests that call `dump`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any


def dump(name: str, payload: dict[str, Any]) -> None:
    """Write `payload` as BLOCKKIT_DUMP/NAME.json when BLOCKKIT_DUMP is set; else nothing."""
    folder = os.environ.get("BLOCKKIT_DUMP")
    if not folder:
        return
    path = Path(folder) / (re.sub(r"[^\w.-]+", "-", name) + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
