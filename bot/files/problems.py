"""Why a file could not be read, in words fit for the person who shared it."""

from __future__ import annotations


class FileProblem(Exception):
    """A file that cannot be read; `reason` completes "I can't read NAME, …"."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason
