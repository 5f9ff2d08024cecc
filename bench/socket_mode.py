"""Measure slack_sdk's Socket Mode clients under the faults Slack's connections have.

Each client runs against a local Socket Mode server (tests/fakes/socket_mode.py, reached
through `apps.connections.open` on the fake Web API) with a listener that acknowledges every
envelope at once, so what is timed is the client, not the app. For each client it prints:

- after a refresh (`disconnect` with `refresh_requested`; envelopes sent the moment the new
  connection says hello): ack latency p50 / max over `--refreshes` x 4 envelopes;
- after a silent drop (nothing passes either way, no FIN): seconds until a new connection
  says hello, and the ack latency of the first envelope on it;
- after a cut in the middle of an envelope's frame (then a reset): seconds until the
  envelope, delivered again on the new connection, is acknowledged.

    .venv/bin/python bench/socket_mode.py [--clients builtin,websocket_client,websockets,aiohttp]
        [--ping-interval N] [--refreshes 5] [--drop-timeout 90]

Without --ping-interval each client runs with its own default (what Bolt's handlers pass).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk import WebClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.fakes import FakeSlackAPI
from tests.fakes.socket_mode import (
    FakeSocketMode,
    events_api_payload,
    slash_command_payload,
)

APP_TOKEN = "xapp-1-A0001-bench"
# Bolt's handlers' defaults (slack_bolt.adapter.socket_mode.*): what an app gets unless it says.
DEFAULT_PING = {"builtin": 10.0, "websocket_client": 10.0, "websockets": 10.0, "aiohttp": 10.0}


@dataclass
class Figures:
    """What one client did."""

    client: str
    ping_interval: float
    after_refresh: list[float] = field(default_factory=list)
    replace_after_drop: float | None = None
    ack_after_drop: float | None = None
    ack_after_cut: float | None = None
    failures: list[str] = field(default_factory=list)


def start_client(name: str, api_url: str, ping_interval: float) -> Callable[[], None]:
    """Connect a client of kind `name` that acknowledges every envelope; returns its closer."""
    if name in ("builtin", "websocket_client"):
        if name == "builtin":
            from slack_sdk.socket_mode.builtin import SocketModeClient
        else:
            from slack_sdk.socket_mode.websocket_client import SocketModeClient  # type: ignore[assignment]
        client = SocketModeClient(
            app_token=APP_TOKEN,
            web_client=WebClient(base_url=api_url),
            ping_interval=ping_interval,
        )

        def ack(client: BaseSocketModeClient, request: SocketModeRequest) -> None:
            client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

        client.socket_mode_request_listeners.append(ack)
        client.connect()
        return client.close
    return _start_async_client(name, api_url, ping_interval)


def _start_async_client(name: str, api_url: str, ping_interval: float) -> Callable[[], None]:
    from slack_sdk.web.async_client import AsyncWebClient

    if name == "websockets":
        from slack_sdk.socket_mode.websockets import SocketModeClient
    else:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient  # type: ignore[assignment]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    async def run() -> None:
        client = SocketModeClient(
            app_token=APP_TOKEN,
            web_client=AsyncWebClient(base_url=api_url),
            ping_interval=ping_interval,
        )

        async def ack(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id)
            )

        client.socket_mode_request_listeners.append(ack)
        await client.connect()
        ready.set()
        await stop.wait()
        await client.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    ready.wait(10)

    def close() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)

    return close


def measure(name: str, ping_interval: float, refreshes: int, drop_timeout: float) -> Figures:
    """Run the three faults against one client."""
    figures = Figures(name, ping_interval)
    with FakeSlackAPI() as slack, FakeSocketMode() as server:
        server.serve_through(slack)
        close = start_client(name, slack.base_url, ping_interval)
        try:
            server.wait_connection(0)
            for _ in range(refreshes):
                seen = len(server.connections)
                server.refresh()
                connection = server.wait_connection(seen)
                sent = [
                    server.send("events_api", events_api_payload(), to=connection),
                    server.send("slash_commands", slash_command_payload(), to=connection),
                    server.send("events_api", events_api_payload(), to=connection),
                    server.send("slash_commands", slash_command_payload(), to=connection),
                ]
                for envelope in sent:
                    try:
                        figures.after_refresh.append(server.wait_acked(envelope, timeout=10))
                    except TimeoutError:
                        figures.failures.append("refresh: envelope never acknowledged")
                time.sleep(0.5)

            seen = len(server.connections)
            dropped = time.monotonic()
            server.go_silent()
            try:
                connection = server.wait_connection(seen, timeout=drop_timeout)
                figures.replace_after_drop = connection.opened_at - dropped
                envelope = server.send("events_api", events_api_payload(), to=connection)
                figures.ack_after_drop = server.wait_acked(envelope, timeout=10)
            except TimeoutError as exc:
                figures.failures.append(f"silent drop: {exc}")

            time.sleep(0.5)
            seen = len(server.connections)
            cut_at = time.monotonic()
            lost = server.cut_mid_envelope("events_api", events_api_payload("cut"))
            try:
                connection = server.wait_connection(seen, timeout=drop_timeout)
                again = server.resend(lost, to=connection)
                server.wait_acked(again, timeout=10)
                assert again.acked_at is not None
                figures.ack_after_cut = again.acked_at - cut_at
            except TimeoutError as exc:
                figures.failures.append(f"cut mid-envelope: {exc}")
        finally:
            close()
    return figures


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="builtin,websocket_client,websockets,aiohttp")
    parser.add_argument("--ping-interval", type=float, default=None)
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--drop-timeout", type=float, default=90.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the clients' own reconnect chatter

    print(
        "| Client | ping_interval | ack after refresh p50 / max (s) | silent drop: replaced after"
        " (s) | then ack (s) | cut mid-envelope: re-sent envelope acked after (s) |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.clients.split(","):
        ping = args.ping_interval or DEFAULT_PING[name]
        figures = measure(name, ping, args.refreshes, args.drop_timeout)
        acks = figures.after_refresh
        refresh = (f"{statistics.median(acks):.3f} / {max(acks):.3f}" if acks else "—") + (
            "" if len(acks) == 4 * args.refreshes else f" ({len(acks)} acked)"
        )
        print(
            f"| {name} | {ping:g} | {refresh} | {_fmt(figures.replace_after_drop)} | "
            f"{_fmt(figures.ack_after_drop)} | {_fmt(figures.ack_after_cut)} |",
            flush=True,
        )
        for failure in figures.failures:
            print(f"  {name}: {failure}", file=sys.stderr)


if __name__ == "__main__":
    main()
