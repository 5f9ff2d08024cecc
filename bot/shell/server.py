"""Serving Slack: HTTP (waitress, multi-threaded) or Socket Mode, and stopping gracefully."""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from prometheus_client import start_http_server
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from bot.shell.request_guard import MAX_BODY_BYTES, GuardedRequestHandler
from bot.shell.settings import Settings
from bot.shell.socket_mode import SocketMode
from bot.shell.wiring import Runtime, create_runtime
from db.engine import deadline, ping

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DatabaseHealth:
    """Whether the database answers, asked on one side thread and waited for `timeout` at most.

    A frozen database (packets dropped, no error) would hold each probe until TCP gives up:
    the HTTP thread asking never waits longer than `timeout`, and while one probe hangs no
    other is started, so a frozen database holds one thread, never all of them.
    """

    def __init__(self, engine: Engine, *, timeout: float = 0.8, fresh_for: float = 1.0) -> None:
        self._engine = engine
        self._timeout = timeout
        self._fresh_for = fresh_for
        self._lock = threading.Lock()
        self._probe = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchboard-health")
        self._pending: Any = None
        self._known: tuple[float, bool] | None = None

    def __call__(self) -> bool:
        with self._lock:
            if self._known is not None and time.monotonic() - self._known[0] < self._fresh_for:
                return self._known[1]
            if self._pending is None or self._pending.done():
                self._pending = self._probe.submit(self._reachable)
            pending = self._pending
        try:
            ok = bool(pending.result(timeout=self._timeout))
        except FutureTimeout:
            ok = False
        with self._lock:
            self._known = (time.monotonic(), ok)
        return ok

    def _reachable(self) -> bool:
        try:
            # Bounded itself, so that one frozen probe does not stop the next for long.
            with deadline(max(2.0, 2 * self._timeout)), self._engine.connect() as connection:
                ping(connection)
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        """Let go of the probe thread (a hung probe is left behind)."""
        self._probe.shutdown(wait=False, cancel_futures=True)


def wsgi_app(runtime: Runtime, *, draining: threading.Event | None = None) -> WSGIApp:
    """`POST /slack/events` for Slack, `GET /healthz` for load balancers, `GET /metrics`."""
    slack = GuardedRequestHandler(runtime.app, metrics=runtime.metrics)  # metrics hook
    health = DatabaseHealth(runtime.engine)
    metrics = runtime.metrics.wsgi_app()  # metrics hook

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":  # metrics hook
            return metrics(environ, start_response)  # type: ignore[return-value]
        if environ.get("PATH_INFO") == "/healthz":
            if draining is not None and draining.is_set():
                status, body = "503 Service Unavailable", b"stopping\n"
            elif health():
                status, body = "200 OK", b"ok\n"
            else:
                status, body = "503 Service Unavailable", b"database unreachable\n"
            start_response(
                status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        # Whatever a request stores before its acknowledgement (an event, a command's
        # receipt) gives up in time for Slack's 3 s: a 5xx then, and Slack delivers it again.
        with deadline(ACK_DEADLINE):
            return slack(environ, start_response)

    return application


# What a Slack request may spend on the database before it is acknowledged.
ACK_DEADLINE = 2.0
# Paths answered on a thread of their own, never queued behind Slack's requests.
HEALTH_PATHS = frozenset({"/healthz"})


class HealthFirstDispatcher(ThreadedTaskDispatcher):
    """Waitress's dispatcher, with one more thread that serves only `HEALTH_PATHS`.

    Each HTTP thread storing an event may wait up to `ACK_DEADLINE` on a frozen database:
    with every thread waiting, a health check queued behind them took 3.8 s (issue #19), and
    a load balancer would mark a working process dead. Health checks wait for no one here.
    """

    def __init__(self) -> None:
        super().__init__()
        self._health: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._serve_health, name="waitress-health", daemon=True).start()

    def add_task(self, task: Any) -> None:
        """Queue a channel's next request: health checks on their own thread."""
        requests = getattr(task, "requests", None)
        if requests and getattr(requests[0], "path", None) in HEALTH_PATHS:
            self._health.put(task)
        else:
            super().add_task(task)

    def _serve_health(self) -> None:
        while True:
            task = self._health.get()
            try:
                task.service()
            except BaseException:
                log.exception("serving a health check failed")


def make_http_server(
    runtime: Runtime, *, host: str, port: int, threads: int,
    draining: threading.Event | None = None, loop_timeout: float = 1.0,
) -> Any:  # fmt: skip
    """A waitress server; its request threads store events and acknowledge, turns run apart.

    `loop_timeout` is how long waitress's loop sleeps in `select`: closing the server waits
    up to that long (the test harness, which starts and stops an app per test, uses less).
    """
    return create_server(
        wsgi_app(runtime, draining=draining),
        host=host,
        port=port,
        threads=threads,
        backlog=2048,
        connection_limit=2000,
        channel_timeout=60,
        # Waitress answers 413 itself, before buffering, for chunked bodies too.
        max_request_body_size=MAX_BODY_BYTES + 1,
        ident="switchboard",
        asyncore_loop_timeout=loop_timeout,
        _dispatcher=_dispatcher(threads),
    )


def _dispatcher(threads: int) -> HealthFirstDispatcher:
    dispatcher = HealthFirstDispatcher()
    dispatcher.set_thread_count(threads)
    return dispatcher


def serve_http(settings: Settings, *, port: int | None = None, accept_only: bool = False) -> int:
    """`python -m bot serve`: until SIGTERM or SIGINT, then drain and exit 0.

    With `accept_only`, this process only stores events; `work` processes answer them.
    """
    settings.require_slack_credentials("SLACK_SIGNING_SECRET", "OPENAI_API_KEY")
    runtime = create_runtime(settings, answer=not accept_only)
    stopping = threading.Event()
    server = make_http_server(
        runtime,
        host="0.0.0.0",
        port=port or settings.port,
        threads=settings.http_threads,
        draining=stopping,
    )
    _stop_on_signals(stopping)
    runtime.start()
    threading.Thread(target=_run_quietly, args=(server,), name="waitress", daemon=True).start()
    log.info(
        "Switchboard listening on :%s (POST /slack/events, GET /healthz, GET /metrics)",
        server.effective_port,
    )
    _wait(stopping)
    # Events that arrive while draining are still stored: Slack is acknowledged, and another
    # process (or the next start) answers them. Refusing them instead would spend Slack's few
    # retries, and too many failures make Slack turn the app's event delivery off.
    log.info("stopping: finishing running turns (up to %.0f s)", settings.shutdown_grace_seconds)
    runtime.stop(settings.shutdown_grace_seconds)
    server.close()
    runtime.close()
    log.info("stopped")
    return 0


def serve_socket(settings: Settings) -> int:
    """`python -m bot socket`: until SIGTERM or SIGINT, then disconnect, drain and exit 0."""
    settings.require_slack_credentials("SLACK_APP_TOKEN", "OPENAI_API_KEY", socket_mode=True)
    runtime = create_runtime(settings)
    stopping = threading.Event()
    _stop_on_signals(stopping)
    runtime.start()
    # Which Socket Mode client, and why: bot/shell/socket_mode.py.
    handler = SocketMode(
        runtime.app,
        app_token=settings.slack_app_token or "",
        api_url=settings.slack_api_url,
        executor=runtime.executor,
        metrics=runtime.metrics,  # metrics hook
    )
    metrics = _serve_metrics(settings.metrics_port, runtime)  # metrics hook
    if handler.connect():
        log.info("Switchboard connected to Slack in Socket Mode")
    else:
        log.warning("Switchboard is still connecting to Slack in Socket Mode (retrying)")
    _wait(stopping)
    # Disconnect first, so that Slack sends new events to the app's other connections.
    handler.close()
    if metrics is not None:
        metrics.shutdown()
    log.info("stopping: finishing running turns (up to %.0f s)", settings.shutdown_grace_seconds)
    runtime.stop(settings.shutdown_grace_seconds)
    runtime.close()
    log.info("stopped")
    return 0


def _serve_metrics(port: int, runtime: Runtime) -> Any:
    """`GET /metrics` on `port` (0: none); a busy port costs the metrics, not the bot."""
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, registry=runtime.metrics.registry)
    except OSError as exc:
        log.error("METRICS_PORT %s: cannot serve /metrics there (%s)", port, exc)
        return None
    log.info("Metrics on :%s (GET /metrics)", port)
    return server


def work(settings: Settings) -> int:
    """`python -m bot work`: answer stored turns until SIGTERM or SIGINT, then drain, exit 0."""
    settings.require_slack_credentials("OPENAI_API_KEY")
    runtime = create_runtime(settings)
    stopping = threading.Event()
    _stop_on_signals(stopping)
    runtime.start()
    log.info("Switchboard answering stored turns (%d workers)", settings.max_concurrent_turns)
    _wait(stopping)
    log.info("stopping: finishing running turns (up to %.0f s)", settings.shutdown_grace_seconds)
    runtime.stop(settings.shutdown_grace_seconds)
    runtime.close()
    log.info("stopped")
    return 0


def _stop_on_signals(stopping: threading.Event) -> None:
    def stop(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            log.warning("second %s: stopping at once", signal.Signals(signum).name)
            raise SystemExit(1)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _wait(stopping: threading.Event) -> None:
    # Short waits: the signal handler runs between them at the latest.
    while not stopping.wait(0.5):
        pass


def _run_quietly(server: Any) -> None:
    with contextlib.suppress(OSError):  # closing the socket under waitress's loop ends it so
        server.run()
