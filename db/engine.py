"""Engine and session set-up for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Map the PostgreSQL URLs people paste (`postgres://`, `postgresql://`) to psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            # SQLAlchemy 2.1 would pick psycopg 3 for a bare `postgresql://`; we ship psycopg2.
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """Create an engine tuned for the backend named by `url`."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        _serialize_transactions(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_size=pool_size,
        max_overflow=pool_size,
        **kwargs,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (services hand them to handlers)."""
    return sessionmaker(engine, expire_on_commit=False)


def _serialize_transactions(engine: Engine) -> None:
    """Let one transaction of this process at a time into SQLite.

    SQLite has one writer; when threads collide, its busy handler sleeps in growing steps (up
    to 100 ms), which made 40 concurrent turns take seconds. Waiting on a lock here instead
    hands the database over at once. Transactions are short (no model call happens inside
    one), and other processes are still kept apart by SQLite's own locking.

    The price: a thread must not keep a transaction open while it waits for another thread
    that needs one, or both wait forever.
    """
    lock = threading.RLock()

    def acquire(connection: Connection) -> None:
        lock.acquire()
        connection.info["switchboard_lock"] = True

    def release(connection: Connection) -> None:
        if connection.info.pop("switchboard_lock", False):
            lock.release()

    event.listen(engine, "begin", acquire)
    event.listen(engine, "commit", release)
    event.listen(engine, "rollback", release)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # WAL lets readers go on while one thread writes; it is a no-op for in-memory databases.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
