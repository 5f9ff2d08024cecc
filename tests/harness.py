"""The real app, served over HTTP on loopback, talking to the fake Slack and model endpoints.

Requests reach it signed exactly as Slack signs them; nothing of ours is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from bot.shell.server import make_http_server
from bot.shell.settings import Settings
from bot.shell.wiring import Runtime, create_runtime
from db import turns
from tests.fakes import FakeOpenAI, FakeSlackAPI

SIGNING_SECRET = "test-signing-secret"
TEAM = "T0001"
BOT_USER = "UBOT"


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that can tell when every task given to it has finished."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="test-turn")
        self._outstanding = 0
        self._idle = threading.Condition()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._outstanding += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._idle:
            self._outstanding -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no task is queued or running."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._outstanding == 0, timeout=timeout):
                raise AssertionError(f"{self._outstanding} listener tasks still running")


def sign(body: bytes, *, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class HttpResult:
    """An answer from the app."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class SlackRequests:
    """Sends an app at `url` what Slack would: signed events, commands and actions."""

    def __init__(self, url: str, slack: FakeSlackAPI, *, secret: str = SIGNING_SECRET) -> None:
        self.url = url
        self.slack = slack
        self.secret = secret
        self._ids = itertools.count(1)

    # --- raw requests -------------------------------------------------------------------
    def post(
        self,
        body: bytes,
        *,
        content_type: str,
        path: str = "/slack/events",
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> HttpResult:
        """POST a body to the app, signed (with `secret`, at `timestamp`)."""
        secret = self.secret if secret is None else secret
        timestamp = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": sign(body, timestamp=timestamp, secret=secret),
                **(headers or {}),
            },
        )
        return _send(request)

    def get(self, path: str) -> HttpResult:
        """GET a path of the app."""
        return _send(urllib.request.Request(self.url + path))

    # --- Slack payloads -----------------------------------------------------------------
    def next_ts(self) -> str:
        """A fresh Slack message ts, from the same clock as the fake's own messages."""
        return self.slack.next_ts()

    def event(
        self, event: dict[str, Any], *, team_id: str = TEAM, retry_num: int | None = None,
        event_id: str | None = None, **post: Any,
    ) -> HttpResult:  # fmt: skip
        """Deliver an Events API callback (the fake Slack keeps the messages it carries)."""
        self._keep(event)
        envelope = {
            "token": "unused",
            "team_id": team_id,
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": team_id, "user_id": BOT_USER, "is_bot": True}],
        }
        headers = dict(post.pop("headers", {}) or {})
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "timeout"}
        return self.post(
            json.dumps(envelope).encode(),
            content_type="application/json",
            headers=headers,
            **post,
        )

    def deliver(self, event: dict[str, Any], **kwargs: Any) -> HttpResult:
        """Deliver an event as Slack does: a delivery refused with a 5xx is sent again (Slack
        retries three times, minutes apart; here at once) with the same event id.

        A slow moment of a shared machine can make the app refuse a store it could not finish
        within its acknowledgement deadline; Slack's retry is what makes that safe.
        """
        event_id = kwargs.pop("event_id", None) or f"Ev{next(self._ids):08d}"
        result = self.event(event, event_id=event_id, **kwargs)
        for retry in range(1, 4):
            if result.status < 500:
                break
            result = self.event(event, event_id=event_id, retry_num=retry, **kwargs)
        return result

    def _keep(self, event: dict[str, Any]) -> None:
        """What Slack shows after this event: a message posted, edited or deleted."""
        channel = str(event.get("channel") or "")
        if event.get("type") not in ("message", "app_mention") or not channel:
            return
        subtype = event.get("subtype")
        if subtype == "message_deleted":
            self.slack.threads.remove(channel, str(event.get("deleted_ts") or ""))
        elif subtype == "message_changed" and isinstance(event.get("message"), dict):
            changed = event["message"]
            self.slack.threads.update(channel, str(changed.get("ts")), text=changed.get("text"))
        elif event.get("ts"):
            kept = {k: v for k, v in event.items() if k != "event_ts"}
            self.slack.threads.add(channel, kept | {"type": "message"})

    def message_event(
        self, text: str, *, user: str = "U0001", channel: str = "C0001", ts: str | None = None,
        thread_ts: str | None = None, channel_type: str = "channel", team_id: str = TEAM,
        **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """A `message` event as Slack sends it."""
        event = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts or self.next_ts(),
            "channel": channel,
            "channel_type": channel_type,
            "team": team_id,
            "event_ts": ts,
            **extra,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def mention(self, text: str, **kwargs: Any) -> str:
        """Mention the bot in a channel, delivering both events Slack sends; the message ts."""
        event = self.message_event(f"<@{BOT_USER}> {text}", **kwargs)
        assert self.deliver(event | {"type": "app_mention"}).status == 200
        assert self.deliver(event).status == 200
        return event["ts"]

    def say(self, text: str, **kwargs: Any) -> str:
        """A plain message (a DM with channel_type="im", or a thread reply); its ts."""
        event = self.message_event(text, **kwargs)
        assert self.deliver(event).status == 200
        return event["ts"]

    def command(
        self, command: str, text: str = "", *, user: str = "U0001", channel: str = "C0001",
        channel_name: str = "general", team_id: str = TEAM, **post: Any,
    ) -> HttpResult:  # fmt: skip
        """Send a slash command; the app's immediate answer (the ack)."""
        form = {
            "token": "unused",
            "team_id": team_id,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "response_url": self.slack.response_url(),
            "trigger_id": f"trigger-{next(self._ids)}",
        }
        return self.post(
            urlencode(form).encode(), content_type="application/x-www-form-urlencoded", **post
        )

    def action(self, payload: dict[str, Any], **post: Any) -> HttpResult:
        """Send an interactivity payload (block_actions and the like)."""
        payload = {"response_url": self.slack.response_url(), "trigger_id": "t"} | payload
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, content_type="application/x-www-form-urlencoded", **post)


class SlackAppHarness(SlackRequests):
    """The real app served in this process on a free port."""

    def __init__(self, settings: Settings, slack: FakeSlackAPI, model: FakeOpenAI) -> None:
        self.settings = settings
        self.model = model
        self.executor = TrackingExecutor(settings.max_concurrent_turns)
        self.runtime: Runtime = create_runtime(settings, executor=self.executor)
        # A short loop timeout: closing waits for it, once per test (1 s at waitress's default).
        self.server = make_http_server(
            self.runtime, host="127.0.0.1", port=0, threads=8, loop_timeout=0.05
        )
        self.runtime.start()
        super().__init__(f"http://127.0.0.1:{self.server.effective_port}", slack)
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self._closing:  # closing the socket under waitress's loop ends it this way
                raise

    def close(self) -> None:
        """Stop serving and let running turns finish."""
        self._closing = True
        self.runtime.stop(grace=5)
        self.server.close()
        self._thread.join(timeout=5)
        self.runtime.close()

    @property
    def services(self) -> Any:
        """The app's services, for reading what it stored."""
        return self.runtime.services

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for every listener the app started, and every stored turn, to finish."""
        ends = time.monotonic() + timeout
        self.executor.wait_idle(timeout)
        while True:
            with self.runtime.services.sessions() as session:
                unfinished = turns.unfinished(session)
            if not unfinished and not self.runtime.services.turns.running:
                break
            if time.monotonic() > ends:
                raise AssertionError(f"{unfinished} turns still unfinished")
            time.sleep(0.01)
        self.executor.wait_idle(max(0.1, ends - time.monotonic()))


def harness_settings(
    slack: FakeSlackAPI, model: FakeOpenAI, db_url: str, **overrides: Any
) -> Settings:
    """Settings pointing the app at the fakes and the test's database."""
    base = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.base_url,
        openai_api_key="test-key",
        openai_base_url=model.base_url,
        database_url=db_url,
        default_model="gpt-4o-mini",
        auto_migrate=False,
        model_max_retries=0,
        model_provider="openai",  # the fake stands in for OpenAI: its models have prices
        model_first_token_timeout=10.0,
        model_idle_timeout=10.0,
        model_total_timeout=30.0,
    )
    return replace(base, **overrides)


def _send(request: urllib.request.Request) -> HttpResult:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return HttpResult(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, error.read().decode(), dict(error.headers))
