"""What stands between the network and Bolt: a size cap, a body Bolt can read, quiet refusals."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.middleware.request_verification import RequestVerification
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.metrics.recorder import Metrics, request_kind

log = logging.getLogger(__name__)

# Slack's payloads are a few kilobytes (a message event, a slash command, a block action);
# a megabyte leaves room for big modal submissions and refuses the rest unread.
MAX_BODY_BYTES = 1024 * 1024

_SIGNATURE_FAILURE = "Invalid request signature detected"


class GuardedRequestHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, refusing oversized and unreadable bodies before Bolt sees them."""

    def __init__(
        self, app: Any, path: str = "/slack/events", *, metrics: Metrics | None = None
    ) -> None:
        super().__init__(app, path)
        self.metrics = metrics
        quiet_signature_failures()

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        """Read at most MAX_BODY_BYTES, then hand Bolt a request it can parse."""
        started = time.monotonic()
        environ = request.environ
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(400, "its Content-Length is not a number")
        if length > MAX_BODY_BYTES:
            # Refused from the header alone: nothing of the body is read.
            return _refuse(413, f"its body of {length} bytes is over {MAX_BODY_BYTES}")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            # Bolt parses the body while building the request, before it checks the signature;
            # whatever goes wrong there (not UTF-8, not JSON, a `payload=` that is not an
            # object, fields of the wrong type) is a body Slack never sends.
            bolt_request = BoltRequest(
                body=raw.decode("utf-8"),
                query=request.query_string,
                headers=request.get_headers(),
            )
        except UnicodeDecodeError:
            return _refuse(400, "its body is not UTF-8")
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            return _refuse(400, f"Bolt cannot read its body ({type(exc).__name__})")
        response: BoltResponse = self.app.dispatch(bolt_request)
        if self.metrics is not None:
            seconds = time.monotonic() - started
            kind = request_kind(bolt_request.body)
            self.metrics.acknowledged(kind=kind, status=response.status, seconds=seconds)
        return response


def _refuse(status: int, why: str) -> BoltResponse:
    log.info("Refused a request with status %s: %s", status, why)
    return BoltResponse(status=status, body="")


class _WithoutBody(logging.Filter):
    """Bolt logs a request that fails verification with its whole body; keep one short line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_SIGNATURE_FAILURE):
            record.msg, record.args = "Refused a request with an invalid signature", ()
        return True


def quiet_signature_failures() -> None:
    """Make Bolt's request verification log refusals without the request body."""
    logger = logging.getLogger(f"slack_bolt.{RequestVerification.__name__}")
    if not any(isinstance(f, _WithoutBody) for f in logger.filters):
        logger.addFilter(_WithoutBody())
