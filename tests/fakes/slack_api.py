"""A loopback fake of the Slack Web API for the real `slack_sdk.WebClient`."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from . import block_kit
from ._server import BaseHandler, LoopbackServer, parse_multipart
from .slack_oauth import FakeSlackOAuth
from .slack_threads import FakeThreads

Payload = dict[str, Any]
Responder = Payload | Callable[[Payload], Payload]
T = TypeVar("T")


def decode_json_value(value: Any) -> Any:
    """Decode a form value that holds JSON (e.g. `blocks`); other values pass through."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class SlackCall:
    """One recorded request: method, parsed args, headers, arrival time and the JSON answered."""

    method: str
    args: Payload
    headers: dict[str, str]
    at: float
    path: str = ""
    response: Payload = field(default_factory=dict)

    def arg(self, key: str, default: Any = None) -> Any:
        """Return `args[key]`, JSON-decoding string values such as `blocks` or `files`."""
        return decode_json_value(self.args.get(key, default))

    @property
    def token(self) -> str | None:
        """The bearer token sent with the call, if any."""
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else self.args.get("token")


@dataclass
class _Failure:
    error: str
    times: int | None
    status: int
    retry_after: int | None


# What Slack answers a file download it does not allow (no token, a wrong one, no files:read):
# 200 and its sign-in page, as HTML.
SIGN_IN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><title>Slack</title></head><body>'
    b'<h1>Sign in to your workspace</h1><form action="/signin"></form></body></html>'
)


@dataclass
class HostedFile:
    """A file the fake serves at its private URL, to `token` only."""

    id: str
    name: str
    data: bytes
    token: str
    info: Payload
    chunked: bool = False  # sent without Content-Length (so a read must cap itself)
    deleted: bool = False


@dataclass
class _State:
    calls: list[SlackCall] = field(default_factory=list)
    responses: list[tuple[str, Payload]] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_names: dict[str, str] = field(default_factory=dict)
    # ts of each message started with chat.startStream -> whether it is still streaming
    streams: dict[str, bool] = field(default_factory=dict)


# What Slack documents of chat.startStream/appendStream/stopStream and the fake enforces
# (docs.slack.dev/reference/methods/chat.startStream and its siblings).
MAX_MARKDOWN_TEXT = 12_000
_STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


def _stream_text_length(args: Payload) -> int:
    """Characters of text a chat.*Stream call carries, in markdown_text and in chunks."""
    length = len(str(args.get("markdown_text") or ""))
    for chunk in decode_json_value(args.get("chunks")) or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            length += len(str(chunk.get("text") or ""))
    return length


# The chunks of streamed messages, as Slack documents them (docs.slack.dev, "text streaming";
# slack_sdk's `TaskUpdateChunk`): a task card has an id and a title, one of four statuses, and
# at most 256 characters of details and of output.
_CHUNK_TYPES = ("markdown_text", "task_update", "plan_update", "blocks")
_TASK_STATUSES = ("pending", "in_progress", "complete", "error")
_TASK_KEYS = {"type", "id", "title", "status", "details", "output", "sources"}
MAX_TASK_TEXT = 256


def _chunks_problem(args: Payload) -> str | None:
    """Why Slack would refuse the `chunks` (and `task_display_mode`) of a stream call."""
    mode = args.get("task_display_mode")
    if mode is not None and mode not in ("timeline", "plan"):
        return "invalid_arguments"
    chunks = decode_json_value(args.get("chunks"))
    if chunks is None:
        return None
    if not isinstance(chunks, list):
        return "invalid_arguments"
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("type") not in _CHUNK_TYPES:
            return "invalid_arguments"
        if chunk["type"] != "task_update":
            continue
        if set(chunk) - _TASK_KEYS or chunk.get("status") not in _TASK_STATUSES:
            return "invalid_arguments"
        if not all(isinstance(chunk.get(k), str) and chunk[k] for k in ("id", "title")):
            return "invalid_arguments"
        for key in ("details", "output"):
            value = chunk.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_TASK_TEXT):
                return "invalid_arguments"
    return None


class FakeSlackAPI(LoopbackServer):
    """Records Slack Web API calls and answers them with plausible `ok` payloads.

    The streaming methods are strict, as Slack is: `chat.startStream` outside a DM needs
    `recipient_team_id` and `recipient_user_id`, appending to or stopping a message that is not
    streaming fails, and `markdown_text` takes at most 12,000 characters.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_name: str = "Example",
        bot_name: str = "switchboard",
    ) -> None:
        super().__init__()
        self.handler_class = _SlackHandler
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.team_name, self.bot_name = team_name, bot_name
        self.users: dict[str, Payload] = {}
        self.channels: dict[str, Payload] = {}
        self.missing_users: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = _State()
        self._failures: dict[str, _Failure] = {}
        self._delays: dict[str, float] = {}
        self._responders: dict[str, Responder] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        # Installs into many workspaces; once one is added, tokens are checked on every call.
        self.oauth = FakeSlackOAuth()
        self.files: dict[str, HostedFile] = {}
        # Every channel's messages: those the harness delivers as events, the bot's own, and
        # those a test seeds; `conversations.replies` reads them back.
        self.threads = FakeThreads()

    # ----- configuration -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Value for `WebClient(base_url=...)`, e.g. http://127.0.0.1:PORT/api/."""
        return f"{self.url}/api/"

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
    ) -> Payload:
        """Register a user returned by `users.info`; returns the user object."""
        user = self._user_object(
            user_id, name, real_name, email, is_admin, is_owner, is_bot, team_id
        )
        with self._lock:
            self.users[user_id] = user
            self.missing_users.discard(user_id)
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str = "general",
        is_im: bool = False,
        is_private: bool = False,
    ) -> Payload:
        """Register a channel returned by `conversations.info`; returns the channel object."""
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_im and not is_private,
            "is_group": is_private,
            "is_im": is_im,
            "is_private": is_private or is_im,
            "is_member": True,
        }
        with self._lock:
            self.channels[channel_id] = channel
        return channel

    def add_file(
        self,
        name: str,
        data: bytes,
        *,
        mimetype: str,
        filetype: str | None = None,
        size: int | None = None,
        token: str = "xoxb-test",
        chunked: bool = False,
        team_id: str | None = None,
    ) -> Payload:
        """Host `data` as a shared file; its file object, as a message event carries it.

        Its `url_private_download` answers a GET with `Authorization: Bearer <token>` with
        the bytes; any other caller gets Slack's sign-in page (200, HTML). `size` is what the
        file object declares (default: the real size).
        """
        file_id = f"F{next(self._ids):08d}"
        team = team_id or self.team_id
        base = f"{self.url}/files-pri/{team}-{file_id}"
        info: Payload = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype or name.rpartition(".")[2].lower(),
            "pretty_type": (filetype or name.rpartition(".")[2]).upper(),
            "user": "U0001",
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "size": len(data) if size is None else size,
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://example.slack.com/files/U0001/{file_id}/{name}",
        }
        with self._lock:
            self.files[file_id] = HostedFile(file_id, name, data, token, info, chunked)
        return dict(info)

    def delete_file(self, file_id: str) -> None:
        """The file is deleted: its URL answers 404 and files.info `file_not_found`."""
        with self._lock:
            self.files[file_id].deleted = True

    def downloads(self) -> list[SlackCall]:
        """Recorded GETs of private file URLs, with the token each carried."""
        return self.calls_to("file_download")

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        times: int | None = None,
        status: int = 200,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `times` calls (all if None) to `method` answer ok=false with `error`."""
        with self._lock:
            self._failures[method] = _Failure(error, times, status, retry_after)

    def delay(self, method: str, seconds: float) -> None:
        """Make every call to `method` sleep `seconds` before answering (0 removes the delay)."""
        with self._lock:
            self._delays[method] = seconds

    def add_message(
        self, channel: str, text: str, *, user: str = "U0001", ts: str | None = None,
        thread_ts: str | None = None, **fields: Any,
    ) -> Payload:  # fmt: skip
        """A message already in `channel` (as if written before the bot looked); it."""
        message = {"type": "message", "user": user, "text": text, "ts": ts or self.next_ts()}
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        return self.threads.add(channel, message | fields)

    def respond(self, method: str, payload: Responder) -> None:
        """Override the answer for `method` with a dict or a function of the call's args."""
        with self._lock:
            self._responders[method] = payload

    def response_url(self, name: str | None = None) -> str:
        """A slash-command style response_url on this server (`/response/<name>`)."""
        response_id = name or f"R{next(self._ids):06d}"
        return f"{self.url}/response/{response_id}"

    def reset(self) -> None:
        """Forget recorded calls, responses, uploads, failures, delays and overrides."""
        with self._lock:
            self._state = _State()
            self._failures.clear()
            self._delays.clear()
            self._responders.clear()

    # ----- inspection ----------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        """Snapshot of every recorded call, in arrival order."""
        with self._lock:
            return list(self._state.calls)

    @property
    def responses(self) -> list[tuple[str, Payload]]:
        """Snapshot of `(response_id, json_body)` for POSTs to response URLs."""
        with self._lock:
            return list(self._state.responses)

    @property
    def uploads(self) -> dict[str, bytes]:
        """Snapshot of uploaded file bytes by file id."""
        with self._lock:
            return dict(self._state.uploads)

    def refused_blocks(self) -> list[tuple[str, str, list[str]]]:
        """(method, error, messages) of every call refused for its Block Kit."""
        return [
            (call.method, call.response["error"], call.response["response_metadata"]["messages"])
            for call in self.calls
            if not call.response.get("ok", True) and "response_metadata" in call.response
        ]

    def calls_to(self, method: str) -> list[SlackCall]:
        """Recorded calls to one API method."""
        with self._lock:
            return [c for c in self._state.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Block until `count` calls to `method` were recorded; return them all."""

        def enough(calls: list[SlackCall]) -> list[SlackCall] | None:
            matching = [c for c in calls if c.method == method]
            return matching if len(matching) >= count else None

        try:
            return self.wait_until(enough, timeout)
        except TimeoutError:
            got = len(self.calls_to(method))
            seen = sorted({c.method for c in self.calls})
            raise AssertionError(
                f"timed out after {timeout}s waiting for {count} call(s) to {method!r}; "
                f"got {got}. Methods seen: {seen}"
            ) from None

    def wait_until(self, found: Callable[[list[SlackCall]], T | None], timeout: float = 5.0) -> T:
        """Block until `found(calls)` returns something other than None, and return that.

        `found` is called with every recorded call, once now and again after each new one,
        with the fake's lock held: keep it quick and do not call the fake from it.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while (result := found(self._state.calls)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"nothing matched within {timeout}s")
                self._changed.wait(remaining)
            return result

    def wait_for_response(self, count: int = 1, timeout: float = 5.0) -> list[tuple[str, Payload]]:
        """Block until `count` response_url POSTs were recorded; return them all."""
        self.wait_for("response_url", count, timeout)
        return self.responses

    def streamed_text(self, ts: str) -> str:
        """Concatenated markdown text of the chat.*Stream calls for message `ts`."""
        text = []
        for call in self.calls:
            if call.method == "chat.startStream":
                call_ts = call.response.get("ts")
            elif call.method in ("chat.appendStream", "chat.stopStream"):
                call_ts = call.args.get("ts")
            else:
                continue
            if call_ts != ts or not call.response.get("ok", True):
                continue  # another message, or text Slack refused
            text.append(call.args.get("markdown_text") or "")
            for chunk in call.arg("chunks") or []:
                if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                    text.append(chunk.get("text", ""))
        return "".join(text)

    def task_updates(self) -> list[Payload]:
        """The task cards Slack took in stream calls, in the order sent."""
        found: list[Payload] = []
        for call in self.calls:
            if call.method not in _STREAM_METHODS or not call.response.get("ok", True):
                continue
            chunks = call.arg("chunks") or []
            found.extend(
                c for c in chunks if isinstance(c, dict) and c.get("type") == "task_update"
            )
        return found

    def open_streams(self) -> list[str]:
        """The ts of every message started with `chat.startStream` and never stopped."""
        with self._lock:
            return [ts for ts, streaming in self._state.streams.items() if streaming]

    # ----- request handling (called from handler threads) ---------------------------------

    def next_ts(self) -> str:
        """A new message ts, later than every one before (the harness uses it too)."""
        micros = 1_700_000_000_000_000 + 100 * next(self._ts)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _record(self, call: SlackCall) -> None:
        with self._changed:
            self._state.calls.append(call)
            if call.method == "response_url":
                self._state.responses.append((call.path.rsplit("/", 1)[-1], call.args))
            self._changed.notify_all()

    def _plan(self, method: str) -> tuple[float, _Failure | None, Responder | None]:
        with self._lock:
            failure = self._failures.get(method)
            if failure is not None and failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._failures[method]
            return self._delays.get(method, 0.0), failure, self._responders.get(method)

    def _store_upload(self, file_id: str, data: bytes) -> None:
        with self._lock:
            self._state.uploads[file_id] = data

    def _user_object(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
    ) -> Payload:
        name = name or user_id.lower()
        real_name = real_name or name
        profile = {"real_name": real_name, "display_name": name, "email": email}
        return {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": real_name,
            "deleted": False,
            "tz": "UTC",
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "profile": {k: v for k, v in profile.items() if v is not None},
        }

    def _track_stream(self, method: str, args: Payload, payload: Payload) -> None:
        """Note the streams a successful chat.startStream opens and chat.stopStream closes."""
        if not payload.get("ok"):
            return
        with self._lock:
            if method == "chat.startStream" and payload.get("ts"):
                self._state.streams[str(payload["ts"])] = True
            elif method == "chat.stopStream":
                self._state.streams[str(args.get("ts"))] = False

    def _refuse_stream_call(self, method: str, args: Payload) -> str | None:
        """The error Slack answers this chat.*Stream call with, if any."""
        # Slack's error tables name no error for over-long stream text: chat.postMessage's is
        # msg_too_long. The limit is taken to hold for the text of `chunks` too (slack_sdk's
        # ChatStream sends its text as markdown_text chunks).
        if _stream_text_length(args) > MAX_MARKDOWN_TEXT:
            return "msg_too_long"
        problem = _chunks_problem(args)
        if problem is not None:
            return problem
        if method == "chat.startStream":
            if not str(args.get("channel", "")).startswith("D"):
                if not args.get("recipient_team_id"):
                    return "missing_recipient_team_id"
                if not args.get("recipient_user_id"):
                    return "missing_recipient_user_id"
            return None
        with self._lock:
            if not self._state.streams.get(str(args.get("ts"))):
                return "message_not_in_streaming_state"
        return None

    def _answer(self, method: str, args: Payload) -> Payload:
        """Default `ok` payload for an API method."""
        channel = args.get("channel") or args.get("channel_id")
        if method in _STREAM_METHODS:
            error = self._refuse_stream_call(method, args)
            if error is not None:
                return {"ok": False, "error": error}
        if method == "auth.test":
            return {
                "url": f"https://{self.team_name.lower()}.slack.com/",
                "team": self.team_name,
                "user": self.bot_name,
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "users.info":
            user_id = str(args.get("user", ""))
            with self._lock:
                if user_id in self.missing_users:
                    return {"ok": False, "error": "user_not_found"}
                user = self.users.get(user_id)
            if user is None:
                is_bot = user_id == self.bot_user_id
                user = self._user_object(user_id, self.bot_name if is_bot else None, is_bot=is_bot)
            return {"user": user}
        if method in ("chat.postMessage", "chat.update", "chat.stopStream"):
            ts = args.get("ts") or self.next_ts()
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts}
            for key in ("text", "blocks", "thread_ts", "metadata"):
                if args.get(key) is not None:
                    message[key] = decode_json_value(args[key])
            self._keep_bot_message(method, str(channel), message, args)
            extra = {"text": args.get("text", "")} if method == "chat.update" else {}
            return {"channel": channel, "ts": ts, "message": message, **extra}
        if method == "chat.postEphemeral":
            return {"message_ts": self.next_ts()}
        if method == "chat.startStream":
            ts = self.next_ts()
            started = {"user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts, "text": ""}
            self.threads.add(str(channel), started | {"thread_ts": args.get("thread_ts")})
            self.threads.append_text(str(channel), ts, _stream_text(args))
            return {"channel": channel, "ts": ts}
        if method in ("chat.delete", "chat.appendStream"):
            if method == "chat.delete":
                self.threads.remove(str(channel), str(args.get("ts")))
            else:
                self.threads.append_text(str(channel), str(args.get("ts")), _stream_text(args))
            return {"channel": channel, "ts": args.get("ts")}
        if method == "conversations.info":
            with self._lock:
                known = self.channels.get(str(channel))
            default = {"id": channel, "name": "general", "is_channel": True, "is_im": False}
            if str(channel).startswith("D"):
                default = {"id": channel, "is_im": True, "is_channel": False}
            return {"channel": known or default}
        if method == "conversations.open":
            users = str(args.get("users") or args.get("user") or "")
            return {"channel": {"id": args.get("channel") or "D" + users.split(",")[0]}}
        if method == "files.info":
            with self._lock:
                hosted = self.files.get(str(args.get("file")))
            if hosted is None or hosted.deleted:
                return {"ok": False, "error": "file_not_found"}
            return {"file": dict(hosted.info), "comments": [], "response_metadata": {}}
        if method == "conversations.replies":
            return self.threads.replies(args)
        if method == "conversations.history":
            return {"messages": [], "has_more": False, "response_metadata": {"next_cursor": ""}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ids):08d}"
            with self._lock:
                self._state.upload_names[file_id] = str(args.get("filename", ""))
            return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = decode_json_value(args.get("files")) or []
            with self._lock:
                names, uploads = self._state.upload_names, self._state.uploads
                out = [
                    {
                        "id": f.get("id"),
                        "title": f.get("title"),
                        "name": names.get(f.get("id"), ""),
                        "size": len(uploads.get(f.get("id"), b"")),
                    }
                    for f in files
                ]
            return {"files": out}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            view = decode_json_value(args.get("view")) or {}
            return {"view": {"id": f"V{next(self._ids):08d}", **view}}
        return {}

    def _keep_bot_message(self, method: str, channel: str, message: Payload, args: Payload) -> None:
        """Keep what the bot posts, streams or edits, for `conversations.replies`."""
        if method == "chat.postMessage":
            self.threads.add(channel, message)
        elif method == "chat.stopStream":
            self.threads.append_text(channel, str(message["ts"]), _stream_text(args))
        elif args.get("text") is not None:
            self.threads.update(channel, str(message["ts"]), text=str(args["text"]))


def _stream_text(args: Payload) -> str:
    """The markdown text a chat.*Stream call carries, in markdown_text and in chunks."""
    parts = [str(args.get("markdown_text") or "")]
    for chunk in decode_json_value(args.get("chunks")) or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            parts.append(str(chunk.get("text") or ""))
    return "".join(parts)


def _refused_blocks(method: str, args: Payload) -> block_kit.Refused | None:
    """Slack's answer to the call's blocks or view if it refuses them (see block_kit.py)."""
    try:
        block_kit.check(method, {key: decode_json_value(value) for key, value in args.items()})
    except block_kit.Refused as refused:
        return refused
    return None


class _SlackHandler(BaseHandler):
    """Routes /api/<method>, /upload/<file_id> and /response/<id>."""

    def do_POST(self) -> None:
        fake: FakeSlackAPI = self.owner
        url = urlsplit(self.path)
        body = self.read_body()
        headers = dict(self.headers.items())
        if url.path.startswith("/upload/"):
            self._upload(fake, url.path.removeprefix("/upload/"), body)
            return
        if url.path.startswith("/response/"):
            args = decode_json_value(body.decode("utf-8", "replace")) if body else {}
            method = "response_url"
        elif url.path.startswith("/api/"):
            method = unquote(url.path.removeprefix("/api/"))
            args = self._parse_args(body)
            for key, values in parse_qs(url.query, keep_blank_values=True).items():
                args.setdefault(key, values[0] if len(values) == 1 else values)
        else:
            self.send_json(404, {"ok": False, "error": "unknown_path"})
            return
        if not isinstance(args, dict):
            args = {"_raw": args}
        arrived = time.monotonic()
        delay, failure, responder = fake._plan(method)
        status, extra = 200, {}
        refused = fake.oauth.refuse(method, SlackCall(method, args, headers, arrived).token)
        answered = None if refused else fake.oauth.answer(method, args, headers)
        if refused is not None:
            payload = {"ok": False, "error": refused}
        elif failure is not None:
            status, payload = failure.status, {"ok": False, "error": failure.error}
            if failure.retry_after is not None:
                extra["Retry-After"] = str(failure.retry_after)
        elif answered is not None:
            payload = answered
        elif responder is not None:
            payload = {"ok": True, **(responder(args) if callable(responder) else responder)}
        elif (blocks_refused := _refused_blocks(method, args)) is not None:
            # Slack checks Block Kit before anything else it does with the message or view.
            payload = {
                "ok": False,
                "error": blocks_refused.error,
                "response_metadata": {"messages": blocks_refused.messages},
            }
            status = 400 if method == "response_url" else 200
        else:
            payload = {"ok": True, **fake._answer(method, args)}  # an `ok: False` stays
        fake._track_stream(method, args, payload)
        fake._record(SlackCall(method, args, headers, arrived, url.path, payload))
        fake.sleep(delay)
        self.send_json(status, payload, extra)

    def do_GET(self) -> None:
        if urlsplit(self.path).path.startswith("/files-pri/"):
            self._download(self.owner)
            return
        self.do_POST()

    def _download(self, fake: FakeSlackAPI) -> None:
        """A private file URL, as Slack serves it: the bytes to its token, else sign-in."""
        path = urlsplit(self.path).path
        file_id = path.removeprefix("/files-pri/").split("/", 1)[0].rpartition("-")[2]
        headers = dict(self.headers.items())
        with fake._lock:
            hosted = fake.files.get(file_id)
        call = SlackCall("file_download", {"file": file_id}, headers, time.monotonic(), path)
        token = call.token if headers.get("Authorization") else None
        if hosted is not None and hosted.deleted:
            status, body, content_type = 404, b"Not found", "text/plain"
        elif hosted is None or token != hosted.token:
            status, body, content_type = 200, SIGN_IN_PAGE, "text/html; charset=utf-8"
        else:
            status, body, content_type = 200, hosted.data, str(hosted.info["mimetype"])
        fake._record(call)
        try:
            if hosted is not None and status == 200 and hosted.chunked and body is hosted.data:
                self._send_chunked(body, content_type)
            else:
                self.send_bytes(status, body, content_type)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the reader stopped at its cap and hung up

    def _send_chunked(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 65_536):
            piece = body[start : start + 65_536]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _parse_args(self, body: bytes) -> Payload:
        content_type = self.headers.get("Content-Type", "")
        if not body:
            return {}
        if "multipart/form-data" in content_type:
            return dict(parse_multipart(body, content_type))
        text = body.decode("utf-8", "replace")
        if "json" in content_type or text.lstrip().startswith("{"):
            return dict(json.loads(text))
        pairs = parse_qs(text, keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}

    def _upload(self, fake: FakeSlackAPI, file_id: str, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "")
        data = body
        if "multipart/form-data" in content_type:
            parts = parse_multipart(body, content_type)
            files = [v for v in parts.values() if isinstance(v, bytes)]
            data = files[0] if files else b""
        fake._store_upload(file_id, data)
        call_args = {"file_id": file_id, "size": len(data)}
        fake._record(
            SlackCall("file_upload", call_args, dict(self.headers.items()), time.monotonic())
        )
        self.send_bytes(200, f"OK - {len(data)}".encode(), "text/plain; charset=utf-8")
