"""A loopback fake of the OpenAI Chat Completions API for the real `openai.OpenAI` client."""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from ._server import BaseHandler, LoopbackServer

Payload = dict[str, Any]


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"


DEFAULT = _Default.DEFAULT
"""Sentinel for `FakeReply.usage`: compute usage from the request and reply lengths."""

_ERROR_KINDS = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass
class FakeReply:
    """One scripted answer of the fake model (text, streaming shape, timing, usage, errors)."""

    text: str = "Hello from the fake model."
    chunks: list[str] | None = None
    chunk_size: int = 8
    model: str | None = None
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    usage: Payload | Literal[_Default.DEFAULT] | None = DEFAULT
    status: int = 200
    error_body: Payload | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    hang: float = 0.0
    finish_reason: str = "stop"
    # Raw SSE text around the events: comments or keep-alives before the first one, an error
    # event in place of the end (as OpenRouter sends mid-stream), text after `data: [DONE]`.
    preamble: str = ""
    stream_error: Payload | None = None
    after_done: str = ""
    hold_after_done: float = 0.0
    # Faults of endpoints that do not stream as asked: answer `stream: true` with one whole
    # chat.completion; refuse `stream: true` with a 400 naming the parameter (and answer the
    # request without it); send `raw` as the body, labelled `content_type`, instead of an answer.
    ignore_stream: bool = False
    refuse_stream: bool = False
    raw: bytes | None = None
    content_type: str = "text/html; charset=utf-8"
    # Send `keep_alive_text` (a comment, or any raw SSE) every `keep_alive` seconds after the
    # preamble, `keep_alives` times (None: until the client goes away); end the stream without
    # `data: [DONE]` when `done` is false.
    keep_alive: float = 0.0
    keep_alives: int | None = None
    keep_alive_text: str = ": ping\n\n"
    done: bool = True
    # Calls the model asks for, as (id, name, arguments JSON), after any text: streamed as
    # OpenAI does, each call's first chunk with its id and name, then its arguments in pieces
    # of `chunk_size` keyed by the call's index; the finish reason becomes "tool_calls".
    tool_calls: list[tuple[str, str, str]] | None = None
    # LiteLLM's proxy: what the call cost, in its `x-litellm-response-cost` header.
    response_cost: float | None = None
    # An endpoint (or model) without tool support: a request offering `tools` gets a 400, as
    # Ollama and vLLM answer, and this reply waits for the request without them.
    refuse_tools: bool = False

    def all_headers(self) -> dict[str, str]:
        """`headers`, and the cost header when `response_cost` is set."""
        if self.response_cost is None:
            return dict(self.headers)
        return {**self.headers, "x-litellm-response-cost": repr(self.response_cost)}

    def pieces(self) -> list[str]:
        """The streamed content pieces: `chunks`, or `text` split every `chunk_size` chars."""
        if self.chunks is not None:
            return list(self.chunks)
        size = max(1, self.chunk_size)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]

    def full_text(self) -> str:
        """The complete answer text (joined `chunks` when given)."""
        return "".join(self.chunks) if self.chunks is not None else self.text

    def usage_for(self, request: Payload) -> Payload | None:
        """The usage object to report for `request` (None = report none)."""
        if self.usage is not DEFAULT:
            return self.usage
        prompt = max(1, sum(len(_content_text(m.get("content"))) for m in _messages(request)) // 4)
        completion = max(1, len(self.full_text()) // 4)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def error_payload(self) -> Payload:
        """OpenAI-style error JSON for a non-200 `status`."""
        if self.error_body is not None:
            return self.error_body
        kind, code = _ERROR_KINDS.get(self.status, ("server_error", None))
        message = f"Fake error (HTTP {self.status})"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _messages(request: Payload) -> list[Payload]:
    messages = request.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _image_part(messages: Any) -> str | None:
    """Where the first image part of `messages` is (OpenAI's `param`), if there is one."""
    for number, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for index, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") == "image_url":
                return f"messages.[{number}].content.[{index}].type"
    return None


def _tool_message_problem(messages: list[Payload]) -> str | None:
    """What OpenAI's API says of a conversation whose tool messages do not answer the calls
    of the assistant message just before them, in its own words; None when they do."""
    expected: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in expected:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            expected.discard(call_id)
            continue
        if expected:
            break
        if role == "assistant":
            expected = {str(c.get("id")) for c in message.get("tool_calls") or ()}
    if expected:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(sorted(expected))
        )
    return None


class FakeOpenAI(LoopbackServer):
    """Answers /v1/chat/completions (plain and SSE) and /v1/models from scripted replies."""

    def __init__(self, *, models: list[str] | None = None) -> None:
        super().__init__()
        self.handler_class = _OpenAIHandler
        self.models: list[str] = list(models or ["gpt-4o-mini", "gpt-4o", "o3-mini"])
        # Models that read no images: a request holding an image part gets OpenAI's 400.
        self.text_only_models: set[str] = set()
        self.default_reply: FakeReply = FakeReply()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[FakeReply] = deque()
        self._requests: list[Payload] = []
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """Value for `OpenAI(base_url=...)`, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.url}/v1"

    def enqueue(self, *replies: FakeReply) -> None:
        """Queue replies; each chat completion pops one (falls back to `default_reply`)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Number of queued replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[Payload]:
        """Snapshot of recorded request bodies (each with an added `_path` key)."""
        with self._lock:
            return list(self._requests)

    def completions(self) -> list[Payload]:
        """Recorded chat-completion request bodies only."""
        return [r for r in self.requests if r["_path"].endswith("/chat/completions")]

    def wait_for_requests(
        self, count: int = 1, timeout: float = 5.0, path: str | None = None
    ) -> list[Payload]:
        """Block until `count` requests (optionally only to `path`) were recorded; return them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._requests if path is None or r["_path"] == path]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} request(s)"
                        f"{f' to {path}' if path else ''}; got {len(found)}"
                    )
                self._changed.wait(remaining)

    def reset(self) -> None:
        """Clear queued replies and recorded requests (keeps `default_reply` and `models`)."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    def _record(self, body: Payload) -> None:
        with self._changed:
            self._requests.append(body)
            self._changed.notify_all()

    def _queue_front(self, reply: FakeReply) -> None:
        with self._lock:
            self._queue.appendleft(replace(reply, refuse_stream=False))

    def _next_reply(self) -> FakeReply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default_reply


class _OpenAIHandler(BaseHandler):
    """Routes GET /v1/models and POST /v1/chat/completions."""

    def do_GET(self) -> None:
        fake: FakeOpenAI = self.owner
        path = urlsplit(self.path).path
        self.read_body()
        fake._record({"_path": path, "_method": "GET"})
        if path.removeprefix("/v1") != "/models":
            self.send_json(404, {"error": {"message": f"Unknown path {path}", "type": "not_found"}})
            return
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in fake.models]
        self.send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        fake: FakeOpenAI = self.owner
        path = urlsplit(self.path).path
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"_raw": body}
        body["_path"] = path
        body["_at"] = time.monotonic()
        fake._record(body)
        if path.removeprefix("/v1") != "/chat/completions":
            self.send_json(404, {"error": {"message": f"Unknown path {path}", "type": "not_found"}})
            return
        if body.get("model") in fake.text_only_models and _image_part(body.get("messages")):
            error = {
                "message": "Invalid content type. image_url is only supported by certain models.",
                "type": "invalid_request_error",
                "param": _image_part(body.get("messages")),
                "code": None,
            }
            self.send_json(400, {"error": error})
            return
        invalid = _tool_message_problem(_messages(body))
        if invalid is not None:
            error = {"message": invalid, "type": "invalid_request_error", "param": "messages",
                     "code": None}  # fmt: skip
            self.send_json(400, {"error": error})
            return
        reply = fake._next_reply()
        if reply.refuse_tools and body.get("tools"):
            fake._queue_front(reply)
            error = {
                "message": f"registry.ollama.ai/library/{body.get('model')} does not support tools",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            self.send_json(400, {"error": error})
            return
        fake.sleep(reply.hang)
        if reply.refuse_stream and body.get("stream"):
            error = {
                "message": "This model does not support streaming; set stream to false.",
                "type": "invalid_request_error",
                "param": "stream",
                "code": "unsupported_value",
            }
            fake._queue_front(reply)  # the request without streaming gets the answer
            self.send_json(400, {"error": error})
            return
        if reply.raw is not None:
            self.send_bytes(reply.status, reply.raw, reply.content_type, reply.all_headers())
            return
        if reply.status != 200:
            self.send_json(reply.status, reply.error_payload(), reply.all_headers())
            return
        base = {
            "id": f"chatcmpl-fake{next(fake._ids):06d}",
            "created": int(time.time()),
            "model": reply.model or body.get("model") or "fake-model",
            "system_fingerprint": "fp_fake",
        }
        if body.get("stream") and not reply.ignore_stream:
            self._stream(fake, reply, body, base)
        else:
            fake.sleep(reply.first_token_delay)
            self.send_json(200, self._completion(reply, body, base), reply.all_headers())

    @staticmethod
    def _completion(reply: FakeReply, body: Payload, base: Payload) -> Payload:
        message: Payload = {"role": "assistant", "content": reply.full_text(), "refusal": None}
        finish = reply.finish_reason
        if reply.tool_calls:
            message["content"] = reply.full_text() or None
            message["tool_calls"] = [
                {"id": id, "type": "function", "function": {"name": name, "arguments": args}}
                for id, name, args in reply.tool_calls
            ]
            finish = "tool_calls"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        result = {**base, "object": "chat.completion", "choices": [choice]}
        usage = reply.usage_for(body)
        if usage is not None:
            result["usage"] = usage
        return result

    def _stream(self, fake: FakeOpenAI, reply: FakeReply, body: Payload, base: Payload) -> None:
        options = body.get("stream_options") or {}
        usage = reply.usage_for(body) if options.get("include_usage") else None
        extra = {"usage": None} if usage is not None else {}

        def chunk(delta: Payload, finish: str | None = None) -> Payload:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "object": "chat.completion.chunk", "choices": [choice], **extra}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.all_headers().items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if reply.preamble:
                self._write_chunk(reply.preamble.encode())
            sent = 0
            while reply.keep_alive and not fake._stopping.is_set():
                if reply.keep_alives is not None and sent >= reply.keep_alives:
                    break
                fake.sleep(reply.keep_alive)
                self._write_chunk(reply.keep_alive_text.encode())
                sent += 1
            self._event(chunk({"role": "assistant", "content": "", "refusal": None}))
            fake.sleep(reply.first_token_delay)
            pieces = reply.pieces() or [""]
            for n, piece in enumerate(pieces):
                if reply.cut_after is not None and n >= reply.cut_after:
                    if reply.stream_error is not None:
                        self._event({"error": reply.stream_error})
                        self._write_chunk(b"")
                    else:
                        self._cut()
                    return
                if n:
                    fake.sleep(reply.chunk_delay)
                last = n == len(pieces) - 1 and not reply.tool_calls
                self._event(chunk({"content": piece}, reply.finish_reason if last else None))
            for index, (id, name, args) in enumerate(reply.tool_calls or ()):
                call = {"index": index, "id": id, "type": "function"}
                self._event(chunk({"tool_calls": [{**call, "function": {"name": name}}]}))
                size = max(1, reply.chunk_size)
                for start in range(0, len(args), size):
                    fragment = {"arguments": args[start : start + size]}
                    self._event(chunk({"tool_calls": [{"index": index, "function": fragment}]}))
            if reply.tool_calls:
                self._event(chunk({}, "tool_calls"))
            if usage is not None:
                self._event(
                    {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
            if not reply.done:
                self._write_chunk(b"")
                return
            self._write_chunk(b"data: [DONE]\n\n")
            if reply.after_done:
                self._write_chunk(reply.after_done.encode())
            fake.sleep(reply.hold_after_done)
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _event(self, payload: Payload) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk (empty data = the terminating chunk) and flush."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _cut(self) -> None:
        """Abruptly end the connection mid-stream (no [DONE], no terminating chunk)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
