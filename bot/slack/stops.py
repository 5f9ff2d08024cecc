"""Stopping a reply's stream: chat.stopStream retried within its rate tier.

A stream that is not stopped stays streaming and never gets its feedback buttons, so a stop
Slack refuses for a passing reason (HTTP 5xx, a rate limit, a broken connection) is tried
again. Only here: the WebClient's own retry handlers apply to every method, and repeating an
append or a post that failed on a 5xx could show its text twice; stopping twice cannot (the
second answers `message_not_in_streaming_state`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.chat_stream import ChatStream

log = logging.getLogger(__name__)

# chat.stopStream is rate tier 2 (20+ calls a minute per workspace): two retries, 0.5 and 1 s
# apart or after Slack's Retry-After, all within 4 s, so a reply's end is late by seconds at
# most. Then the caller closes the message another way.
STOP_RETRIES = 2
STOP_BACKOFF = 0.5
STOP_RETRY_WITHIN = 4.0
# Errors Slack documents for chat.stopStream (and every method) that may pass.
_TRANSIENT = ("ratelimited", "internal_error", "fatal_error", "service_unavailable")
# Errors that mean the stream is closed already: nothing left to stop.
NOT_STREAMING = ("message_not_in_streaming_state", "message_not_found", "cant_update_message")

Failure = SlackApiError | OSError


def retrying(call: Callable[[], object], *, retries: int = STOP_RETRIES) -> Failure | None:
    """Make `call` (a chat.stopStream) until Slack takes it; the last error if it never does."""
    deadline = time.monotonic() + STOP_RETRY_WITHIN
    attempt = 0
    while True:
        try:
            call()
            return None
        except (SlackApiError, OSError) as exc:
            wait = retry_wait(exc, STOP_BACKOFF * 2**attempt)
            if attempt >= retries or wait is None or time.monotonic() + wait > deadline:
                return exc
            log.info("stopStream failed (%s); trying again in %.1f s", error_code(exc), wait)
            time.sleep(wait)
            attempt += 1


def stop_stream(
    client: WebClient, channel: str, ts: str, text: str | None, *, retries: int = STOP_RETRIES
) -> Failure | None:
    """Stop the stream of message `ts` with `text` at its end; the error if Slack never took it."""
    error = retrying(
        lambda: client.chat_stopStream(channel=channel, ts=ts, markdown_text=text or None),
        retries=retries,
    )
    if error is not None:
        level = logging.DEBUG if error_code(error) in NOT_STREAMING else logging.WARNING
        log.log(level, "stopStream failed: %s", error_code(error))
    return error


def stop_helper(
    stream: ChatStream, last: str, blocks: list[dict[str, Any]] | None
) -> Failure | None:
    """Stop `stream` through slack_sdk's helper with `last` and `blocks`, retried likewise."""
    # A ChatStream whose stop raised keeps its state and its buffer, which holds `last`:
    # calling stop() again without the text sends the same request again.
    texts = iter([last or None])
    return retrying(lambda: stream.stop(markdown_text=next(texts, None), blocks=blocks))


def retry_wait(exc: Exception, backoff: float) -> float | None:
    """Seconds to wait before trying a failed call again; None when trying again cannot help."""
    if not isinstance(exc, SlackApiError):
        return backoff  # a connection reset or timed out
    if exc.response.status_code == 429 or error_code(exc) == "ratelimited":
        headers = {key.lower(): value for key, value in (exc.response.headers or {}).items()}
        retry_after = headers.get("retry-after") or "0"
        if isinstance(retry_after, list):
            retry_after = retry_after[0]
        try:
            return max(backoff, float(retry_after))
        except ValueError:
            return backoff
    if exc.response.status_code >= 500 or error_code(exc) in _TRANSIENT:
        return backoff
    return None


def error_code(exc: Exception) -> str:
    """Slack's error code of a failed call, or what went wrong on the way."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", exc))
    return str(exc) or type(exc).__name__
