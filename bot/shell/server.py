"""Serving Slack: HTTP (waitress, multi-threaded) or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from waitress.server import create_server

from bot.shell.request_guard import MAX_BODY_BYTES, GuardedRequestHandler
from bot.shell.settings import Settings
from bot.shell.wiring import Runtime, create_runtime

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(runtime: Runtime) -> WSGIApp:
    """`POST /slack/events` for Slack, `GET /healthz` for load balancers."""
    slack = GuardedRequestHandler(runtime.app)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = database_reachable(runtime.engine)
            status = "200 OK" if ok else "503 Service Unavailable"
            body = b"ok\n" if ok else b"database unreachable\n"
            start_response(
                status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return slack(environ, start_response)

    return application


def database_reachable(engine: Engine) -> bool:
    """Whether a trivial query succeeds."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def make_http_server(runtime: Runtime, *, host: str, port: int, threads: int) -> Any:
    """A waitress server; its request threads only acknowledge, turns run on the executor."""
    return create_server(
        wsgi_app(runtime),
        host=host,
        port=port,
        threads=threads,
        backlog=2048,
        connection_limit=2000,
        channel_timeout=60,
        # Waitress answers 413 itself, before buffering, for chunked bodies too.
        max_request_body_size=MAX_BODY_BYTES + 1,
        ident="switchboard",
    )


def serve_http(settings: Settings, *, port: int | None = None) -> int:
    """`python -m bot serve`."""
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY")
    runtime = create_runtime(settings)
    server = make_http_server(
        runtime, host="0.0.0.0", port=port or settings.port, threads=settings.http_threads
    )
    log.info(
        "Switchboard listening on :%s (POST /slack/events, GET /healthz)", server.effective_port
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        runtime.close()
    return 0


def serve_socket(settings: Settings) -> int:
    """`python -m bot socket`."""
    settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPENAI_API_KEY")
    runtime = create_runtime(settings)
    log.info("Switchboard connecting to Slack in Socket Mode")
    try:
        SocketModeHandler(runtime.app, settings.slack_app_token).start()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
    return 0
