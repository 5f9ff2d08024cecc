"""Engine and session set-up for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """Map the PostgreSQL URLs people paste (`postgres://`, `postgresql://`) to psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            # SQLAlchemy 2.1 would pick psycopg 3 for a bare `postgresql://`; we ship psycopg2.
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def make_engine(
    url: str, *, pool_size: int = 10, query_timeout: float | None = None, **kwargs: Any
) -> Engine:
    """Create an engine tuned for the backend named by `url`.

    With `query_timeout` (seconds; the bot's own engine), no database wait lasts longer: on
    PostgreSQL each connection attempt and each statement (`deadline()` shortens it for a
    block of work), on SQLite each wait for the write lock (its busy timeout).
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            # As many connections as PostgreSQL gets: a writer waiting for SQLite's lock
            # holds its connection, and a reader must not queue behind it for one.
            kwargs = {"pool_size": pool_size, "max_overflow": pool_size, **kwargs}
        busy = query_timeout if query_timeout is not None else 30.0
        engine = create_engine(url, connect_args={"timeout": busy}, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = POSTGRES_TIMEOUTS | kwargs.pop("connect_args", {})
    if query_timeout is not None:
        connect_args |= _postgres_deadlines(query_timeout, connect_args.get("options"))
    engine = create_engine(
        url,
        pool_recycle=1800,
        pool_use_lifo=True,  # the busiest connections stay in use, the others idle (and pinged)
        pool_size=pool_size,
        max_overflow=pool_size,
        # Waiting for a free connection is bounded too: past it, the caller fails and retries.
        pool_timeout=2 if query_timeout is not None else 10,
        connect_args=connect_args,
        **kwargs,
    )
    _ping_when_idle(engine)
    return engine


# SQLAlchemy's `pool_pre_ping` sends `SELECT 1` before every checkout: one round trip more
# for each transaction, about 8 a turn. Only a connection left idle can have been cut
# unnoticed (a restart, a failover, a firewall's idle timeout), so only those are pinged
# (SQLAlchemy's "custom pessimistic ping" recipe); one cut while in use fails its statement,
# which the pool then takes as a sign to replace every connection older than it.
# `bench/load.py --only cpu` (CPU a turn of the bot, PostgreSQL): see README, "CPU a turn".
IDLE_PING_SECONDS = 1.0
_CHECKED_IN = "switchboard_checked_in"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # The pool replaces it (and retries the checkout with a new connection).
                raise DisconnectionError(str(error)) from error
            raise


# libpq's own limits, so that no call waits for ever on a database that froze (packets
# dropped, nothing refused): a connection attempt gives up after 5 s, data the server has not
# acknowledged after 15 s, and a silent connection is found dead by keepalives in about 25 s.
POSTGRES_TIMEOUTS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


# --- deadlines -------------------------------------------------------------------------------
# A server that hangs with its connections open (a stopped process, a VM paused, a proxy that
# forwards nothing) acknowledges every TCP packet: libpq's keepalives and `tcp_user_timeout`
# never fire, and neither does the server's own `statement_timeout`. Only the client can tell
# that no answer came: psycopg2 runs each connection attempt and each statement through a
# wait callback (its documented hook for green threads), and ours gives up at the deadline;
# psycopg2 then marks the connection broken and the pool drops it.
# Measured on the 2-core machine (a loaded moment): `SELECT 1` took 129 µs this way against
# 45 µs blocking, so a turn's ~15 queries cost about 1 ms more. Without it, a frozen database
# held each acknowledgement for as long as the freeze (20 s for 20 s, issue #19).
_local = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every PostgreSQL wait of this thread inside the block ends within `seconds` from now.

    The connection attempt and each statement; past it, an `OperationalError`, and the
    connection is dropped. Nested deadlines keep the earlier end. SQLite keeps its busy
    timeout: a waiting writer there waits for another of this machine's writers, which will
    finish, and with 120 mentions at once a 2 s limit refused some of them (a burst that its
    30 s timeout, later `DATABASE_TIMEOUT`, stores whole).
    """
    outer: float | None = getattr(_local, "ends", None)
    ends = time.monotonic() + seconds
    _local.ends = ends if outer is None else min(outer, ends)
    try:
        yield
    finally:
        _local.ends = outer


def _thread_deadline() -> float | None:
    return getattr(_local, "ends", None)


def _postgres_deadlines(seconds: float, options: str | None) -> dict[str, Any]:
    """Connect arguments that bound each statement and lock wait on the server and client."""
    import psycopg2.extensions

    psycopg2.extensions.set_wait_callback(_wait_with_deadline)
    ms = round(seconds * 1000)
    server = (
        f"-c statement_timeout={ms} -c lock_timeout={ms // 2} "
        # A client gone mid-transaction (a partition) must not hold its locks for ever.
        f"-c idle_in_transaction_session_timeout={max(ms * 3, 60_000)}"
    )
    # The server's own limit ends a slow statement first, with a clear error; the client's,
    # a second later, covers a server that does not answer at all.
    factory = type(
        "DeadlineConnection", (psycopg2.extensions.connection,), {"query_timeout": seconds + 1}
    )
    return {
        "options": f"{options} {server}" if options else server,
        "connection_factory": factory,
    }


class _Freeze:
    """Logs once when the database stops answering in time, and once when it answers again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self._answered_at = float("-inf")

    def began(self, waited: float) -> None:
        with self._lock:
            started = time.monotonic() - waited
            # A wait that began before the database last answered is a straggler of the
            # freeze already logged as over (its connection was stuck), not a new one.
            if self.since is not None or started < self._answered_at:
                return
            self.since = started
        log.warning(
            "the database is not answering (nothing within %.1f s); what needs it fails "
            "until it does",
            waited,
        )

    def ended(self) -> None:
        with self._lock:
            if self.since is None:
                return
            self._answered_at = time.monotonic()
            lasted, self.since = self._answered_at - self.since, None
        log.warning("the database answers again, after about %.0f s", lasted)


FREEZE = _Freeze()


def _wait_with_deadline(conn: Any) -> None:
    """psycopg2's wait callback (`extras.wait_select`), giving up at the deadline."""
    import psycopg2
    import psycopg2.extensions as ext

    started = time.monotonic()
    ends = _thread_deadline()
    own = getattr(conn, "query_timeout", None)
    if own is not None:
        ends = started + own if ends is None else min(ends, started + own)
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            if FREEZE.since is not None:
                FREEZE.ended()
            return
        left = None if ends is None else ends - time.monotonic()
        if left is not None and left <= 0:
            FREEZE.began(time.monotonic() - started)
            raise ext.QueryCanceledError(
                f"no answer from the database within {time.monotonic() - started:.1f} s"
            )
        if state == ext.POLL_READ:
            select.select([conn.fileno()], [], [], left)
        elif state == ext.POLL_WRITE:
            select.select([], [conn.fileno()], [], left)
        else:
            raise psycopg2.OperationalError(f"unexpected state from poll(): {state}")


class _Session(Session):
    """A session whose `begin()` takes SQLite's write lock at once (`BEGIN IMMEDIATE`)."""

    def begin(self, nested: bool = False) -> SessionTransaction:
        """Begin a transaction; on SQLite one that may write, so it waits for the lock now."""
        transaction = super().begin(nested)
        if not nested:
            self.connection(execution_options={_BEGIN: "IMMEDIATE"})
        return transaction


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (services hand them to handlers).

    `sessions.begin()` is for work that writes; a plain `sessions()` only reads. On SQLite the
    first begins with `BEGIN IMMEDIATE`, the second with a deferred `BEGIN` that, in WAL
    mode, never waits for a writer.
    """
    if engine.dialect.name == "sqlite":
        return sessionmaker(engine, class_=_Session, expire_on_commit=False)
    return sessionmaker(engine, expire_on_commit=False)


# SQLAlchemy's recipe for pysqlite ("Serializable isolation / Savepoints / Transactional DDL"):
# the driver's own transaction handling is off and we emit BEGIN ourselves. A transaction
# that writes must take the write lock when it begins: one that read first and then tries to
# write while another thread committed fails at once with "database is locked"
# (SQLITE_BUSY_SNAPSHOT; the busy timeout does not apply). Readers begin deferred.
#
# It replaced a process-wide lock around every transaction, reads included. Medians of
# `.venv/bin/python bench/sqlite_concurrency.py` (40 writer threads, 30,000 responses rows;
# two runs each, 2026-12-04, shared 2-core machine):
#                                                    lock          this
#   trivial read started during a 40-write burst     42-59 ms      1.4-2.2 ms
#   40 write transactions, wall time                 42-52 ms      115-190 ms
#   per write transaction, p50 / p99                 23 / 39 ms    35-42 / 114-187 ms
# Without the lock, waiting writers poll in SQLite's busy handler (sleeps of 1 ms growing to
# 100 ms), so a burst of writes alone takes longer; end to end it does not show:
# `bench/conversations.py`, 40 simultaneous conversations, 2.28-2.35 s before, 2.22-2.38 s
# after. A report read in `sessions.begin()` holds the write lock while it runs (40 writes
# behind it: 640-750 ms); reports should read in `sessions()`.
_BEGIN = "switchboard_sqlite_begin"


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would begin late (at the first write) and commit before DDL: we begin instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers go on while one thread writes; it is a no-op for in-memory databases.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def ping(connection: Connection) -> None:
    """Ask the database the cheapest question there is; raises if it cannot answer."""
    connection.execute(text("SELECT 1"))


def safe_url(url: str) -> str:
    """`url` fit to print: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def failure_reason(exc: SQLAlchemyError) -> str:
    """The first line of what the database driver said, for a one-line message."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
