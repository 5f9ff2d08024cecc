"""What the model client's HTTP transport does for an answer: deadlines and connection reuse.

`StreamHooks` are event hooks on the `openai` client's `http_client`. For a request made while
an answer is `watching`, they give each attempt the time left to its deadlines, stop the
client's retries when the wait it was asked for would outlast them, and check the deadlines
after every read of the body. For every event stream they keep the connection: the client's
`Stream` stops reading at `data: [DONE]` and closes the response, which drops the connection
instead of returning it to the pool (openai-python#3440, open; 3.60's `AsyncStream` drains,
its `Stream` does not): a new TCP and TLS handshake for every reply, one or two round trips
to a real endpoint (`bench/model_port.py --sdk`: 205 connections for 205 answers, 1 with
these hooks). `test_transport.py` has a contract test that fails the day the client keeps the
connection itself.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2
from openai._streaming import ServerSentEvent, SSEDecoder

from bot.llm.deadlines import Clock

log = logging.getLogger(__name__)

# `data: [DONE]` at the start of a line: a JSON string cannot hold a raw line end before it.
_DONE = re.compile(rb"[\r\n]data: ?\[DONE\]")


@dataclass
class Watch:
    """One answer's clock, and what the transport saw of its responses."""

    clock: Clock
    done: bool = False  # the body carried `data: [DONE]`
    refused_wait: float | None = None  # a retry not made: the wait asked for outlasts the answer


_WATCH: ContextVar[Watch | None] = ContextVar("model_answer", default=None)


@contextlib.contextmanager
def watching(watch: Watch) -> Iterator[None]:
    """Requests made inside this block are held to `watch`'s deadlines."""
    token = _WATCH.set(watch)
    try:
        yield
    finally:
        _WATCH.reset(token)


class StreamHooks:
    """The event hooks of the model client's `http_client` (see the module's docstring)."""

    def __init__(self) -> None:
        self._endings = ResponseEndings()

    def install(self, http_client: httpx2.Client) -> None:
        """Add the hooks to `http_client`, after any it has."""
        hooks = http_client.event_hooks
        http_client.event_hooks = {
            "request": [*hooks.get("request", []), self.on_request],
            "response": [*hooks.get("response", []), self.on_response],
        }

    def on_request(self, request: httpx2.Request) -> None:
        """Each attempt gets the time left; none starts after a deadline."""
        watch = _WATCH.get()
        if watch is not None:
            request.extensions["timeout"] = watch.clock.request_timeouts()

    def on_response(self, response: httpx2.Response) -> None:
        """Headers are in: bound the retry's wait, or the reads of the body."""
        watch = _WATCH.get()
        if watch is not None and response.is_error:
            status = response.status_code
            asked = retry_after(response.headers)
            retried = status in (408, 409, 429) or status >= 500  # what the client retries
            if retried and asked is not None and asked >= watch.clock.left():
                # The client obeys the endpoint's `x-should-retry`; it would sleep out a
                # `Retry-After` of up to two minutes, past the answer's deadlines.
                response.headers["x-should-retry"] = "false"
                watch.refused_wait = asked
            return
        if watch is not None:
            timeouts = response.request.extensions.get("timeout")
            if isinstance(timeouts, dict):  # read when the body starts
                timeouts["read"] = watch.clock.body_read_timeout()
        stream = response.stream
        if "event-stream" in response.headers.get("content-type", "") and isinstance(
            stream, httpx2.SyncByteStream
        ):  # the sync client's bodies are all sync streams
            response.stream = _WatchedStream(stream, watch, self._endings)


class _WatchedStream(httpx2.SyncByteStream):
    """The bytes of an event stream; notes `[DONE]`, checks deadlines, keeps the connection."""

    def __init__(
        self, stream: httpx2.SyncByteStream, watch: Watch | None, endings: ResponseEndings
    ) -> None:
        self._stream = stream
        self._watch = watch
        self._endings = endings
        self._chunks: Iterator[bytes] | None = None
        self._tail = b"\n"  # the body starts at a line's start
        self._done = False
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        self._chunks = iter(self._stream)
        clock = self._watch.clock if self._watch is not None else None
        for chunk in self._chunks:
            window = self._tail + chunk
            self._tail = window[-16:]
            if not self._done and _DONE.search(window):
                self._done = True
                if self._watch is not None:
                    self._watch.done = True
            if clock is None:
                yield chunk
                continue
            at = clock.read()
            yield chunk
            # Resumed: the chunks of that read were handled, and marked any progress.
            clock.check(at)
        self._ended = True

    def close(self) -> None:
        if self._done and not self._ended and self._chunks is not None:
            self._endings.finish(self._chunks, self._stream)
        else:
            self._stream.close()


class ResponseEndings:
    """Reads the end of each streamed body after `data: [DONE]`, off the reply's path.

    A body read to its end gives its connection back to the pool. The end is normally there
    already; a server that keeps the response open would hold the reading thread until the
    read timeout, so while a few such responses wait, further ones are closed at once.
    """

    MAX_WAITING = 4

    def __init__(self) -> None:
        self._waiting: queue.Queue[tuple[Iterator[bytes], httpx2.SyncByteStream]] = queue.Queue(
            self.MAX_WAITING
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def finish(self, chunks: Iterator[bytes], stream: httpx2.SyncByteStream) -> None:
        """Read what is left of `chunks`, then close `stream` (at once, when too many wait)."""
        try:
            self._waiting.put_nowait((chunks, stream))
        except queue.Full:
            stream.close()
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="model-response-endings", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            chunks, stream = self._waiting.get()
            try:
                next(chunks, None)  # the end of the body; anything more: the server goes on
            except httpx2.HTTPError:
                pass  # the answer is complete; a connection that breaks now costs nothing
            except Exception:
                log.warning("reading the end of a model response failed", exc_info=True)
            finally:
                stream.close()


class EventDecoder(SSEDecoder):
    """The client's event-stream decoder, but events without data are not dispatched.

    The SSE spec drops them; openai 3.60 hands on `event: ping` or `data:` alone as an event
    whose data, "", is not JSON, and the answer fails (a contract test in `test_transport.py`).
    """

    def decode(self, line: str) -> ServerSentEvent | None:
        event = super().decode(line)
        return event if event is not None and event.data else None


def carries_done(data: bytes) -> bool:
    """Whether a whole body `data` has `data: [DONE]`."""
    return _DONE.search(b"\n" + data) is not None


def retry_after(headers: httpx2.Headers) -> float | None:
    """The seconds `Retry-After(-ms)` asks for (a number or an HTTP date), if it is given."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return max(0.0, float(headers.get(name, "")) / divisor)
        except ValueError:
            continue
    with contextlib.suppress(TypeError, ValueError):
        at = parsedate_to_datetime(headers.get("retry-after", ""))
        return max(0.0, at.timestamp() - time.time())
    return None
