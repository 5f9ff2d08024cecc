"""What every command of `python -m bot` shares: its database, and one line when it fails."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.shell.settings import Settings
from db.engine import failure_reason, make_engine, make_sessionmaker, safe_url

_P = ParamSpec("_P")


class CommandError(Exception):
    """Stops a command: its message is the one stderr line, `code` the exit code.

    2 for input that makes no sense (the message names it and shows one that works), 1 when
    the database failed.
    """

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def error_line(message: str, *, code: int = 2) -> int:
    """Print `switchboard: MESSAGE` on stderr and return the exit code."""
    print(f"switchboard: {message}", file=sys.stderr)
    return code


def one_line_errors(command: Callable[_P, int]) -> Callable[_P, int]:
    """The command's exit code, a CommandError it raises printed as one stderr line."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> int:
        try:
            return command(*args, **kwargs)
        except CommandError as exc:
            return error_line(str(exc), code=exc.code)

    return run


@contextmanager
def database(
    settings: Settings, *, doing: str, pool_size: int = 1
) -> Iterator[sessionmaker[Session]]:
    """Sessions on the settings' database for one command, closed after it.

    A database error inside becomes a CommandError (exit 1) saying what could not be done
    (`doing`, e.g. "read usage from"), where and why.
    """
    missing = sqlite_file_missing(settings.database_url)
    if missing is not None:
        # Connecting would leave an empty file behind, and a database without tables.
        raise CommandError(
            f"{missing} does not exist: run `python -m bot migrate` (or start the bot) first.",
            code=1,
        )
    engine = make_engine(settings.database_url, pool_size=pool_size)
    try:
        yield make_sessionmaker(engine)
    except SQLAlchemyError as exc:
        raise CommandError(
            f"cannot {doing} {safe_url(settings.database_url)}: {failure_reason(exc)} "
            "(is the database migrated? run `python -m bot migrate`)",
            code=1,
        ) from exc
    finally:
        engine.dispose()


def sqlite_file_missing(url: str) -> str | None:
    """The file a SQLite URL names when it does not exist yet, in a folder that does; else None.

    SQLite creates a missing file on connect; a missing folder only fails, creating nothing.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    if path.exists() or not path.parent.is_dir():
        return None
    return str(path)
