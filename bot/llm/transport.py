"""Server-sent events read off an `httpx2` response, and the ends of bodies read off the path.

The `openai` client's own `Stream` stops reading at `data: [DONE]` and so closes the connection
instead of returning it to the pool (openai-python#3440, still open): a new TCP and TLS handshake
for every reply. `tests/bot/llm/test_sse.py` has a contract test that fails the day the SDK
keeps the connection itself; then this module can go.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator

import httpx2

log = logging.getLogger(__name__)


class ResponseEndings:
    """Reads the end of each streamed body after `data: [DONE]`, off the reply's path.

    A body read to its end gives its connection back to the pool. The end is normally there
    already; a server that keeps the response open would hold the reading thread until the
    read timeout, so while a few such responses wait, further ones are closed at once.
    """

    MAX_WAITING = 4

    def __init__(self) -> None:
        self._waiting: queue.Queue[tuple[httpx2.Response, Iterator[bytes]]] = queue.Queue(
            self.MAX_WAITING
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def finish(self, response: httpx2.Response, chunks: Iterator[bytes]) -> None:
        """Read what is left of `response`, then close it (at once, when too many wait)."""
        try:
            self._waiting.put_nowait((response, chunks))
        except queue.Full:
            response.close()
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="model-response-endings", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            response, chunks = self._waiting.get()
            try:
                next(chunks, None)  # the end of the body; anything more: the server goes on
            except httpx2.HTTPError:
                pass  # the answer is complete; a connection that breaks now costs nothing
            except Exception:
                log.warning("reading the end of a model response failed", exc_info=True)
            finally:
                response.close()


class EventStream:
    """Server-sent events, from the bytes of a response as they arrive.

    Lines end only at CR, LF or CRLF, as SSE says; not `iter_lines()`, which like
    `str.splitlines` also splits at U+2028, U+2029 and U+0085, and JSON may carry those
    unescaped inside a string.
    """

    def __init__(self) -> None:
        self._partial = b""
        self._after_cr = False
        self._data: list[str] = []

    def feed(self, received: bytes) -> list[str]:
        """The data of each event that `received` completes (comments and other fields skipped)."""
        if self._after_cr and received:
            # A CR ended the last read's line: an LF now is the rest of that line's end.
            self._after_cr = False
            received = received.removeprefix(b"\n")
        lines = (self._partial + received).splitlines(keepends=True)
        # A last piece without CR or LF is incomplete: it waits for the rest of its line.
        self._partial = lines.pop() if lines and not lines[-1].endswith((b"\r", b"\n")) else b""
        if lines:
            self._after_cr = lines[-1].endswith(b"\r")
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode()
            if not line:
                if any(self._data):  # an event with empty data is not dispatched
                    events.append("\n".join(self._data))
                self._data = []
            elif line.startswith("data:"):
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
        return events
