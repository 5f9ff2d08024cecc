"""A loopback Slack Socket Mode server: hello, envelopes, acks, and the faults Slack's has.

Clients reach it through `apps.connections.open` on the fake Web API (`serve_through`), which
hands out `ws://127.0.0.1:PORT/link/?ticket=N`. Each connection passes a small relay in front
of the `websockets` server, so that a test can make one connection go silent (nothing through,
no FIN, no RST: a dropped connection), or cut it in the middle of an envelope's frame.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from .slack_api import FakeSlackAPI, Payload


@dataclass
class Envelope:
    """One envelope sent, and when (monotonic seconds) it was sent and acknowledged."""

    envelope_id: str
    type: str
    sent_at: float
    connection: int
    payload: Payload
    retry_attempt: int = 0
    acked_at: float | None = None
    ack: Payload | None = None

    @property
    def ack_seconds(self) -> float | None:
        """Seconds from sending to the acknowledgement, None while unacknowledged."""
        return None if self.acked_at is None else self.acked_at - self.sent_at


@dataclass
class Connection:
    """One client connection, numbered in the order they said hello."""

    number: int
    websocket: ServerConnection
    opened_at: float
    link: _Link | None = None
    closed_at: float | None = None


class _Link:
    """Relays one TCP connection to the websocket server; can go silent or be cut."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.silent = False
        self.cut_after: int | None = None  # bytes still let through to the client, then reset
        self.local_port = upstream.getsockname()[1]

    def start(self) -> None:
        """Start relaying."""
        pairs = ((self.client, self.upstream, False), (self.upstream, self.client, True))
        for source, target, down in pairs:
            threading.Thread(target=self._pump, args=(source, target, down), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, down: bool) -> None:
        try:
            while data := source.recv(65536):
                while self.silent:  # a dropped connection: the bytes go nowhere
                    time.sleep(0.05)
                    if self.cut_after is not None:
                        break
                if down and self.cut_after is not None:
                    target.sendall(data[: self.cut_after])
                    self.reset()
                    return
                target.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def reset(self) -> None:
        """Close both ends with RST, as a server that goes away does."""
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FakeSocketMode:
    """A Socket Mode server on loopback; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._ws: Server = serve(self._handle, "127.0.0.1", 0, ping_interval=None, compression=None)
        self._ws_port = self._ws.socket.getsockname()[1]
        threading.Thread(target=self._ws.serve_forever, daemon=True).start()
        self._front = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._front.getsockname()[1]
        self._links: dict[int, _Link] = {}  # by the relay's local port towards the ws server
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.messages: list[Payload] = []  # everything clients sent
        self._tickets = itertools.count(1)
        self._ids = itertools.count(1)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> FakeSocketMode:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- set-up -----------------------------------------------------------------------------
    def url(self) -> str:
        """A fresh WebSocket URL, as `apps.connections.open` answers."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(self._tickets)}"

    def serve_through(self, slack: FakeSlackAPI) -> None:
        """Make the fake Web API's `apps.connections.open` hand out this server's URLs."""
        slack.respond("apps.connections.open", lambda _args: {"ok": True, "url": self.url()})

    # --- what Slack does --------------------------------------------------------------------
    def send(
        self, type_: str, payload: Payload, *, to: Connection | None = None, retry_attempt: int = 0
    ) -> Envelope:
        """Send an envelope (`events_api`, `slash_commands`, …) on `to` (default: the newest)."""
        connection = to or self.current()
        envelope_id = f"env-{next(self._ids)}"
        message = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": type_ != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        envelope = Envelope(
            envelope_id, type_, time.monotonic(), connection.number, payload, retry_attempt
        )
        with self._lock:
            self.envelopes[envelope_id] = envelope
        with contextlib.suppress(ConnectionClosed, OSError):
            connection.websocket.send(json.dumps(message))
        return envelope

    def resend(self, envelope: Envelope, *, to: Connection | None = None) -> Envelope:
        """Deliver an unacknowledged envelope again, as Slack retries it."""
        attempt = envelope.retry_attempt + 1
        return self.send(envelope.type, envelope.payload, to=to, retry_attempt=attempt)

    def refresh(self, connection: Connection | None = None) -> None:
        """Ask for a reconnect, as Slack does routinely: `disconnect`, `refresh_requested`."""
        connection = connection or self.current()
        message = {
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": {"host": "fake-socket-mode"},
        }
        with contextlib.suppress(ConnectionClosed, OSError):
            connection.websocket.send(json.dumps(message))

    def go_silent(self, connection: Connection | None = None) -> None:
        """Drop the connection without a word: nothing passes, in either direction."""
        connection = connection or self.current()
        assert connection.link is not None
        connection.link.silent = True

    def cut_mid_envelope(self, type_: str, payload: Payload) -> Envelope:
        """Send an envelope of which only the first half reaches the client, then reset."""
        connection = self.current()
        assert connection.link is not None
        size = len(json.dumps(payload))
        connection.link.cut_after = max(8, size // 2)
        return self.send(type_, payload, to=connection)

    # --- waiting and reading ---------------------------------------------------------------
    def current(self) -> Connection:
        """The newest connection that said hello."""
        with self._lock:
            assert self.connections, "no client connected"
            return self.connections[-1]

    def wait_connection(self, after: int = 0, timeout: float = 15.0) -> Connection:
        """The first connection numbered above `after`, once it has said hello."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.connections) > after, timeout=timeout):
                raise TimeoutError(f"no connection after #{after} within {timeout} s")
            return self.connections[after]

    def wait_acked(self, envelope: Envelope, timeout: float = 10.0) -> float:
        """Seconds the envelope took to be acknowledged (raises if it is not in `timeout`)."""
        with self._lock:
            if not self._lock.wait_for(lambda: envelope.acked_at is not None, timeout=timeout):
                raise TimeoutError(f"{envelope.envelope_id} not acknowledged in {timeout} s")
        assert envelope.ack_seconds is not None
        return envelope.ack_seconds

    # --- the server ------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._front.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._ws_port))
            link = _Link(client, upstream)
            with self._lock:
                self._links[link.local_port] = link
            link.start()

    def _handle(self, websocket: ServerConnection) -> None:
        with self._lock:
            link = self._links.get(websocket.remote_address[1])
            connection = Connection(len(self.connections) + 1, websocket, time.monotonic(), link)
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
            "connection_info": {"app_id": "A0001"},
        }
        websocket.send(json.dumps(hello))
        with self._lock:
            self.connections.append(connection)
            self._lock.notify_all()
        try:
            for raw in websocket:
                message = json.loads(raw)
                with self._lock:
                    self.messages.append(message)
                    envelope = self.envelopes.get(message.get("envelope_id", ""))
                    if envelope is not None and envelope.acked_at is None:
                        envelope.acked_at = time.monotonic()
                        envelope.ack = message
                    self._lock.notify_all()
        except (ConnectionClosed, OSError):
            pass
        finally:
            connection.closed_at = time.monotonic()

    def close(self) -> None:
        """Stop serving and drop every connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._front.close()
        for link in list(self._links.values()):
            link.close()
        self._ws.shutdown()


def events_api_payload(text: str = "hello", *, ts: str = "1.000001", **event: Any) -> Payload:
    """An `events_api` envelope's payload: a channel message."""
    return {
        "token": "unused",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": f"Ev{ts.replace('.', '')}",
        "event_time": int(time.time()),
        "event": {"type": "message", "user": "U0001", "text": text, "ts": ts,
                  "channel": "C0001", "channel_type": "channel", "team": "T0001"} | event,
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
    }  # fmt: skip


def slash_command_payload(command: str = "/usage", text: str = "help") -> Payload:
    """A `slash_commands` envelope's payload."""
    return {
        "token": "unused",
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": "C0001",
        "channel_name": "general",
        "user_id": "U0001",
        "user_name": "u0001",
        "command": command,
        "text": text,
        "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:9/response",
        "trigger_id": f"trigger-{time.monotonic_ns()}",
    }
