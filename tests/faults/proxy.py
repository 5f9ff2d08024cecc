"""A loopback TCP proxy a test controls: forward, cut (connections reset), or freeze (silence)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; `cut()`, `freeze()` and `restore()` it at will.

    Cut: open connections are reset and new ones are closed at once, as when a database
    restarts. Frozen: connections stay open but nothing goes through, as when a network drops
    packets; nothing errors until a timeout does.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._state = "open"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def cut(self) -> None:
        """Reset every connection and refuse new ones until `restore()`."""
        with self._lock:
            self._state = "cut"
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            _reset(sock)

    def freeze(self) -> None:
        """Let nothing through, in either direction, until `restore()`; errors nothing."""
        with self._lock:
            self._state = "frozen"

    def restore(self) -> None:
        """Forward again (connections cut before stay cut)."""
        with self._lock:
            self._state = "open"

    def close(self) -> None:
        """Stop the proxy and every connection through it."""
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                state = self._state
            if state == "cut":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="tcp-proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            while True:
                with self._lock:
                    state = self._state
                if state != "frozen":
                    break
                time.sleep(0.01)
            if not data or state == "cut":
                _reset(target)
                _reset(source)
                return
            try:
                target.sendall(data)
            except OSError:
                _reset(source)
                return


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()
