"""The `openai` adapter of the model port: stream a chat completion from any compatible endpoint."""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
from genai_prices import data_snapshot

from bot.llm.deadlines import Clock, Deadlines
from bot.llm.errors import model_error, refuses_streaming, status_error, stream_error
from bot.llm.port import ChatMessage, ChatStream, Completion, ModelError, TokenUsage
from bot.llm.sse import EventStream, ResponseEndings

# The `openai` client's retry policy (`_should_retry`, `_calculate_retry_timeout`), run here.
_RETRY_STATUSES = frozenset((408, 409, 429))
_FIRST_RETRY_DELAY = 0.5
_MAX_RETRY_DELAY = 8.0
_NOT_A_COMPLETION = "The model's endpoint sent something that is not a chat completion."
CUT_OFF = "The model's answer was cut off: the stream ended before the answer did."


def build_client(
    *, api_key: str | None, base_url: str | None, timeout: float = 30.0, **kwargs: Any
) -> openai.OpenAI:
    """The `openai` client for an endpoint (`kwargs`: `max_retries`, `http_client`, …).

    `timeout` bounds calls other than completions (`GET /models`); completions keep the
    deadlines of `OpenAIChatModel`, which also makes the client's `max_retries` inside them.
    """
    return openai.OpenAI(api_key=api_key or "unused", base_url=base_url, timeout=timeout, **kwargs)


def provider_name(base_url: str | None) -> str | None:
    """The provider at `base_url` by genai-prices' URL patterns (or Ollama's port), else None."""
    url = base_url or "https://api.openai.com/v1"
    for provider in data_snapshot.get_snapshot().providers:
        if provider.api_pattern and re.match(provider.api_pattern, url):
            return provider.id
    if urlsplit(url).port == 11434:
        return "ollama"
    return None


class OpenAIChatModel:
    """`ChatModel` on the official `openai` client."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        provider: str | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self._client = client
        self.provider = provider
        if deadlines is None:
            # The client's read timeout, as MODEL_TIMEOUT used to be, bounds the wait for the
            # first token and each silence.
            timeout = client.timeout
            read = timeout.read if isinstance(timeout, httpx2.Timeout) else timeout
            wait = float(read) if isinstance(read, int | float) else Deadlines.first_token
            deadlines = Deadlines(first_token=wait, idle=wait, total=max(wait, Deadlines.total))
        self.deadlines = deadlines
        self._max_retries = client.max_retries
        self._endings = ResponseEndings()

    def stream(self, model: str, messages: Sequence[ChatMessage]) -> ChatStream:
        """Stream a chat completion, asking for usage in the final chunk."""
        result = ChatStream(deltas=iter(()), completion=Completion(model=model))
        result.deltas = self._deltas(model, list(messages), result.completion)
        return result

    def list_models(self) -> list[str]:
        """`GET /models`."""
        try:
            return sorted(m.id for m in self._client.models.list())
        except openai.OpenAIError as exc:
            raise model_error(exc) from exc

    def _deltas(
        self, model: str, messages: list[ChatMessage], completion: Completion
    ) -> Iterator[str]:
        # `POST /chat/completions` through the client (its auth and errors), reading the event
        # stream ourselves, for two reasons:
        # - `chat.completions.create` runs every message through `maybe_transform`, which
        #   costs about 0.6 ms for 2 messages and 13 ms for 60, all of it holding the GIL;
        # - its `Stream` stops reading at `data: [DONE]` and so closes the connection
        #   instead of returning it to the pool (openai-python#3440): a new TCP and TLS
        #   handshake for every reply. We hand the end of the body to `ResponseEndings`.
        clock = Clock(self.deadlines)
        response: httpx2.Response | None = None
        try:
            response = self._send(model, messages, clock)
            if "event-stream" in response.headers.get("content-type", ""):
                yield from self._events(response, completion, clock)
                response = None  # read to its end, or handed to the endings
            else:
                text = _read_whole(response.read(), completion)
                if text:
                    yield text
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
                raise clock.expired() from exc
            raise model_error(exc) from exc
        except (ValueError, TypeError, AttributeError) as exc:  # JSON of another shape
            raise ModelError(
                _NOT_A_COMPLETION, retryable=True, detail=f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            if response is not None:
                response.close()

    def _send(self, model: str, messages: list[ChatMessage], clock: Clock) -> httpx2.Response:
        """The response to the request, its headers in, after the retries the deadlines allow.

        The client's own retries would sleep out a `Retry-After` of up to two minutes and give
        each attempt a fresh timeout; run here, they stay inside the answer's deadlines.
        """
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        retries = 0
        while True:
            try:
                response = self._client.post(
                    "/chat/completions",
                    body=body,
                    cast_to=httpx2.Response,
                    stream=True,
                    options={
                        "security": {"bearer_auth": True},
                        "timeout": clock.request_timeout(),
                        "max_retries": 0,
                    },
                )
            except openai.APIStatusError as exc:
                if body["stream"] and refuses_streaming(exc):
                    body = {"model": model, "messages": messages, "stream": False}
                    continue
                if not _should_retry(exc.response) or retries >= self._max_retries:
                    raise
                asked = _retry_after(exc.response.headers)
                if asked is not None and asked >= clock.left():
                    raise _cannot_wait(exc.status_code, asked, clock) from exc
                wait = _backoff(retries) if asked is None else asked
            except openai.APITimeoutError:
                if clock.left() <= 0 or retries >= self._max_retries:
                    raise
                wait = _backoff(retries)
            except openai.APIConnectionError:
                if retries >= self._max_retries:
                    raise
                wait = _backoff(retries)
            else:
                _set_read_timeout(response, clock.body_read_timeout())
                return response
            if wait >= clock.left():
                raise clock.expired()
            time.sleep(wait)
            retries += 1

    def _events(
        self, response: httpx2.Response, completion: Completion, clock: Clock
    ) -> Iterator[str]:
        """The text of an event stream, one delta per read from the network."""
        chunks = response.iter_bytes()
        events = EventStream()
        seen = False
        total_by = clock.total_by
        try:
            for received in chunks:
                data = events.feed(received)
                text, progressed, done, failure = _read_events(data, completion)
                now = time.monotonic()
                if data:
                    seen = True
                if progressed:  # keep-alive comments and empty events are no progress
                    clock.last = now
                if text:
                    yield text
                if failure is not None:
                    raise failure
                if done:
                    self._endings.finish(response, chunks)
                    return
                # After progress only the total deadline can have passed: skip the call.
                if not progressed or now >= total_by:
                    clock.check(now)
        except BaseException:
            response.close()
            raise
        # The body ended without `data: [DONE]`.
        if completion.finish_reason:
            return  # some endpoints stop after the last chunk; the answer is whole
        if not seen:
            raise ModelError(_NOT_A_COMPLETION, retryable=True, detail="no events in the body")
        raise ModelError(
            CUT_OFF, retryable=True, detail="stream ended without [DONE] or a finish reason"
        )


def _set_read_timeout(response: httpx2.Response, seconds: float) -> None:
    """Set how long each read of `response`'s body may wait (read when the body starts)."""
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = seconds


def _should_retry(response: httpx2.Response) -> bool:
    """The `openai` client's rule: 408, 409, 429 and 5xx, unless `x-should-retry` says."""
    said = response.headers.get("x-should-retry")
    if said in ("true", "false"):
        return said == "true"
    return response.status_code in _RETRY_STATUSES or response.status_code >= 500


def _retry_after(headers: httpx2.Headers) -> float | None:
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


def _backoff(retries: int) -> float:
    """The client's jittered exponential backoff."""
    delay = min(_FIRST_RETRY_DELAY * 2**retries, _MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _cannot_wait(status: int, wait: float, clock: Clock) -> ModelError:
    left = max(0.0, clock.left())
    state = "is rate-limiting us" if status == 429 else "is unavailable"
    return ModelError(
        f"The model's endpoint {state} and asked us to wait {wait:.0f} seconds, more than the "
        f"{left:.0f} seconds this answer has left.",
        retryable=True,
        detail=f"HTTP {status}, Retry-After {wait:.1f} s > {left:.1f} s left",
    )


def _read_whole(raw: bytes, completion: Completion) -> str:
    """The text of a body that is not labelled an event stream: a whole `chat.completion`.

    An event stream under another label is read too, all at once.
    """
    if raw.lstrip().startswith((b"data:", b":")):
        text, _, done, failure = _read_events(EventStream().feed(raw + b"\n\n"), completion)
        if failure is not None:
            raise failure
        if not done and not completion.finish_reason:
            raise ModelError(CUT_OFF, retryable=True, detail="stream ended without [DONE]")
        return text
    completion.streamed = False
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ("choices" in answer or "error" in answer):
        raise ModelError(
            _NOT_A_COMPLETION, retryable=True, detail=f"body: {raw[:200].decode(errors='replace')}"
        )
    if answer.get("error"):
        raise status_error(400, answer, detail=f"error in a 200 answer: {answer['error']}")
    if answer.get("model"):
        completion.model = answer["model"]
    if answer.get("usage"):
        completion.usage = _usage(answer["usage"])
    texts: list[str] = []
    for choice in answer["choices"] or ():
        if choice.get("finish_reason"):
            completion.finish_reason = choice["finish_reason"]
        texts.append((choice.get("message") or {}).get("content") or "")
    return "".join(texts)


def _read_events(
    events: list[str], completion: Completion
) -> tuple[str, bool, bool, ModelError | None]:
    """The text of some events, whether the model progressed, whether they end the stream,
    and the error one reported.

    Text before an error is kept: the person sees what was written before it broke off.
    """
    text: list[str] = []
    progressed = False
    for data in events:
        if data.startswith("[DONE]"):
            return "".join(text), True, True, None
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"an event that is not a JSON object: {data[:200]}")
        if chunk.get("error"):
            return "".join(text), progressed, False, stream_error(chunk["error"])
        progressed = _read_chunk(chunk, completion, text) or progressed
    return "".join(text), progressed or bool(text), False, None


def _read_chunk(chunk: dict[str, Any], completion: Completion, text: list[str]) -> bool:
    """Add the text of one `chat.completion.chunk` to `text`, noting its model, usage and
    finish reason; whether it carried anything besides text (reasoning, usage, the end)."""
    if chunk.get("model"):
        completion.model = chunk["model"]
    progressed = False
    if chunk.get("usage"):
        completion.usage = _usage(chunk["usage"])
        progressed = True
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            completion.finish_reason = choice["finish_reason"]
            progressed = True
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            text.append(content)
        elif delta.get("reasoning_content") or delta.get("reasoning") or delta.get("tool_calls"):
            progressed = True  # a reasoning model thinking aloud is working
    return progressed


def _usage(usage: dict[str, Any]) -> TokenUsage:
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    # OpenRouter and LiteLLM report what the call cost; other endpoints leave it out.
    cost = usage.get("cost")
    return TokenUsage(
        prompt=prompt,
        completion=completion,
        total=usage.get("total_tokens") or prompt + completion,
        cached=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        cost_usd=Decimal(str(cost)) if isinstance(cost, int | float) else None,
    )
