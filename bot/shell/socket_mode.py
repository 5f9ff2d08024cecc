"""Socket Mode: the connection to Slack, on slack_sdk's aiohttp client, and its acknowledgements.

Slack closes Socket Mode connections routinely (`disconnect`, `refresh_requested`) and networks
drop them silently. slack_sdk ships four clients; bench/socket_mode.py runs each against a
local Socket Mode server through a refresh, a silent drop and a connection cut in the middle
of an envelope (figures in the README, 2026-12-07):

- the built-in client (Bolt's default) acknowledged the envelopes that followed a refresh only
  after 3.0 s: its `Connection` reads with a fixed 3 s socket timeout (`receive_timeout=3`,
  which `SocketModeClient` does not expose), and `connect()` closes the old connection under
  the receive lock that read holds, so the new connection is not read until it times out;
- websocket-client's never noticed a silent drop (slack_sdk gives `run_forever` no
  `ping_timeout`);
- websockets' took ~50 s (its own 20 s ping timeout, which slack_sdk does not expose);
- aiohttp's acknowledged within milliseconds after a refresh, and with `ping_interval` 2 s
  (aiohttp's heartbeat: a ping every 2 s, the connection closed when its pong is a second
  late) replaced a silent or cut connection within about 5 s.

The app stays a sync Bolt `App`: Bolt's aiohttp handler would run each request on the event
loop itself, so one slow database write would hold every envelope and the heartbeat behind
it; here requests run on the app's listener threads, as the built-in client runs them on its
thread pool, and the loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.aiohttp import SocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics.recorder import Metrics

log = logging.getLogger(__name__)

# Seconds between heartbeats; aiohttp closes a connection whose pong is half of it late.
PING_INTERVAL = 2.0


class _Handler(SocketModeHandler):
    """Bolt's aiohttp Socket Mode handler, running the sync app on `executor`'s threads."""

    def __init__(self, app: App, *, executor: ThreadPoolExecutor, metrics: Metrics, **kw: Any):
        super().__init__(app, **kw)
        self.executor = executor
        self.metrics = metrics

    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        """Run the app on a listener thread, then acknowledge with what it answered."""
        started, wall = time.monotonic(), time.time()
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self.executor, run_bolt_app, self.app, req)
        await send_async_response(client, req, response, wall)
        seconds = time.monotonic() - started
        self.metrics.acknowledged(kind=req.type, status=response.status, seconds=seconds)


class SocketMode:
    """Holds one Socket Mode connection for `app` (replaced as Slack asks or it dies)."""

    def __init__(
        self,
        app: App,
        *,
        app_token: str,
        api_url: str,
        executor: ThreadPoolExecutor,
        metrics: Metrics,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="switchboard-socket-mode", daemon=True
        )
        self._thread.start()

        async def build() -> _Handler:
            # slack_sdk's aiohttp client starts its tasks when built: on the loop, then.
            return _Handler(
                app,
                app_token=app_token,
                web_client=AsyncWebClient(base_url=api_url),
                ping_interval=ping_interval,
                logger=logging.getLogger("slack_bolt.socket_mode"),
                executor=executor,
                metrics=metrics,
            )

        self.handler = self._run(build())

    def _run(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def connect(self, wait: float = 10.0) -> bool:
        """Open the connection (`apps.connections.open`, then the WebSocket); whether it is.

        slack_sdk retries a connection that fails until it succeeds; after `wait` seconds this
        returns False and the retries go on, as they do for every later reconnect.
        """
        connecting = asyncio.run_coroutine_threadsafe(self.handler.connect_async(), self._loop)
        try:
            connecting.result(wait)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Close the connection and stop the loop."""
        try:
            self._run(self.handler.close_async(), timeout=5.0)
        except Exception:
            log.warning("the Socket Mode connection did not close cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
