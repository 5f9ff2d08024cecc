"""Shared plumbing for the loopback fakes: a threaded stdlib HTTP server and a handler base."""

from __future__ import annotations

import email.parser
import email.policy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer tuned for many concurrent loopback clients."""

    daemon_threads = True
    request_queue_size = 128
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Base class: serves `handler_class` on 127.0.0.1:<free port> from a daemon thread."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._accepted = 0
        self._accepted_lock = threading.Lock()

    def start(self) -> Self:
        """Bind to a free loopback port and start serving; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), self.handler_class)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close the listening socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def connections(self) -> int:
        """TCP connections accepted since the server started."""
        with self._accepted_lock:
            return self._accepted

    def _count_connection(self) -> None:
        with self._accepted_lock:
            self._accepted += 1

    @property
    def port(self) -> int:
        """The bound TCP port (server must be started)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def sleep(self, seconds: float) -> None:
        """Sleep in a handler, returning early if the server is stopped."""
        if seconds > 0:
            self._stopping.wait(seconds)


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler with body reading and exact-length JSON/bytes replies."""

    protocol_version = "HTTP/1.1"
    # Streamed replies are many small writes: send each at once, as a real server would.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        """Count the connection, then set up its streams."""
        self.owner._count_connection()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    @property
    def owner(self) -> Any:
        """The LoopbackServer instance this handler serves."""
        # Any: each fake's handler takes it as its own subclass (`fake: FakeOpenAI = self.owner`).
        return cast(Any, self.server.owner)

    def read_body(self) -> bytes:
        """Read the full request body (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a complete response with a correct Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """Send `payload` as a JSON response."""
        body = json.dumps(payload).encode()
        self.send_bytes(status, body, "application/json; charset=utf-8", headers)


def parse_multipart(body: bytes, content_type: str) -> dict[str, str | bytes]:
    """Parse a multipart/form-data body: file parts -> bytes, other fields -> str."""
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields: dict[str, str | bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        # Decoded, a leaf part's payload is bytes (None for a nested multipart).
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if part.get_filename() is None:
            fields[str(name)] = payload.decode("utf-8", "replace")
        else:
            fields[str(name)] = payload
    return fields
