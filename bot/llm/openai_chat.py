"""The `openai` adapter of the model port: stream a chat completion from any compatible endpoint."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
from genai_prices import data_snapshot
from openai import Stream
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from openai.types.completion_usage import CompletionUsage

from bot.llm.deadlines import Clock, Deadlines, Now
from bot.llm.errors import (
    images_refused,
    model_error,
    refuses_images,
    refuses_streaming,
    status_error,
    stream_error,
)
from bot.llm.port import (
    ChatMessage,
    ChatStream,
    Completion,
    ModelError,
    TokenUsage,
    ToolCall,
    ToolSpec,
    has_images,
)
from bot.llm.transport import EventDecoder, StreamHooks, Watch, carries_done, watching

NOT_A_COMPLETION = "The model's endpoint sent something that is not a chat completion."
CUT_OFF = "The model's answer was cut off: the stream ended before the answer did."
# LiteLLM's proxy says what a call cost in a header, streamed or not.
COST_HEADER = "x-litellm-response-cost"


class ChatClient(openai.OpenAI):
    """The `openai` client, with events read as the SSE spec says (see `EventDecoder`), and
    streamed chunks handed over as the JSON objects they came as."""

    def _make_sse_decoder(self) -> EventDecoder:
        return EventDecoder()

    def _process_response_data(
        self, *, data: object, cast_to: type[Any], response: httpx2.Response
    ) -> Any:
        # The client builds a `ChatCompletionChunk` of every chunk (`construct_type`, typing
        # introspection at each level): about 0.07 ms of CPU a chunk (a turn of 40 chunks,
        # 17.5 -> 14.6 ms with `bench/load.py --only cpu`; README, "CPU a turn"), and an
        # answer of 500 tokens streams about 500 chunks. `_Answer.chunk` reads the few fields
        # it needs from the object itself instead.
        if cast_to is ChatCompletionChunk:
            return data
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)


def build_client(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float = 30.0,
    http_client: httpx2.Client | None = None,
    **kwargs: Any,
) -> ChatClient:
    """The `openai` client for an endpoint (`kwargs`: `max_retries`, …), with `StreamHooks`
    on its `http_client` (the client's defaults unless one is given).

    `timeout` bounds calls other than completions (`GET /models`); completions keep the
    deadlines of `OpenAIChatModel`, and the client's `max_retries` happen inside them.
    """
    http_client = http_client or openai.DefaultHttpxClient()
    StreamHooks().install(http_client)
    return ChatClient(
        api_key=api_key or "unused",
        base_url=base_url,
        timeout=timeout,
        http_client=http_client,
        **kwargs,
    )


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
    """`ChatModel` on the official `openai` client, made by `build_client`."""

    def __init__(
        self,
        client: ChatClient,
        *,
        provider: str | None = None,
        deadlines: Deadlines | None = None,
        clock: Now = time.monotonic,
    ) -> None:
        if not isinstance(client, ChatClient):
            raise TypeError("OpenAIChatModel needs the client build_client() makes")
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
        self._clock = clock

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ChatStream:
        """Stream a chat completion, asking for usage in the final chunk."""
        result = ChatStream(deltas=iter(()), completion=Completion(model=model))
        result.deltas = self._deltas(model, list(messages), tools or (), result.completion)
        return result

    def list_models(self) -> list[str]:
        """`GET /models`."""
        try:
            return sorted(m.id for m in self._client.models.list())
        except openai.OpenAIError as exc:
            raise model_error(exc) from exc

    def _deltas(
        self,
        model: str,
        messages: list[ChatMessage],
        tools: Sequence[ToolSpec],
        completion: Completion,
    ) -> Iterator[str]:
        watch = Watch(Clock(self.deadlines, self._clock))
        answer = _Answer(completion)
        try:
            with watching(watch):
                opened = self._open(model, messages, tools, answer, watch)
            if isinstance(opened, ChatCompletion):
                text = answer.whole(opened)
                if text:
                    yield text
                return
            yield from self._chunks(opened, answer, watch)
        except openai.APITimeoutError as exc:
            raise watch.clock.expired() from exc
        except openai.APIStatusError as exc:
            if watch.refused_wait is not None:
                raise _cannot_wait(exc.status_code, watch.refused_wait, watch.clock) from exc
            if has_images(messages) and refuses_images(exc):
                raise images_refused(model, exc) from exc
            raise model_error(exc) from exc
        except openai.APIConnectionError as exc:
            raise model_error(exc) from exc
        except openai.APIError as exc:  # an error event in the stream
            raise stream_error(exc.body if exc.body is not None else exc.message) from exc
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            if isinstance(exc, httpx2.TimeoutException):
                raise watch.clock.expired() from exc
            raise model_error(exc) from exc
        except (ValueError, TypeError, AttributeError, LookupError) as exc:  # JSON of another shape
            raise ModelError(
                NOT_A_COMPLETION, retryable=True, detail=f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            completion.tool_calls = answer.tool_calls()

    def _open(
        self,
        model: str,
        messages: list[ChatMessage],
        tools: Sequence[ToolSpec],
        answer: _Answer,
        watch: Watch,
    ) -> Stream[Any] | ChatCompletion:
        """The stream of the answer, or the whole answer of an endpoint that does not stream."""
        # The messages ride in `extra_body`, which the client sends as it is (text messages, and
        # messages of text and `image_url` parts alike): `create` runs its
        # parameters through `maybe_transform`, 0.3 ms a message holding the GIL (19 ms for a
        # thread of 60 messages: first token 3 ms -> 29 ms in `bench/model_port.py`).
        unchanged: list[ChatCompletionMessageParam] = []
        said = {"messages": messages}
        offered = [_tool_param(tool) for tool in tools] or openai.omit
        completions = self._client.chat.completions
        try:
            stream = completions.create(
                model=model,
                messages=unchanged,
                extra_body=said,
                tools=offered,
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.BadRequestError as exc:
            if not refuses_streaming(exc):
                raise
            raw = completions.with_raw_response.create(
                model=model, messages=unchanged, extra_body=said, tools=offered, stream=False
            )
            answer.header_cost = _header_cost(raw.headers)
            return raw.parse()
        response = stream.response
        answer.header_cost = _header_cost(response.headers)
        if "event-stream" in response.headers.get("content-type", ""):
            return stream
        body = response.read()
        if body.lstrip().startswith((b"data:", b":")):
            # An event stream under another label: the client's stream reads what came.
            watch.done = carries_done(body)
            return stream
        return _whole_answer(body)

    def _chunks(self, stream: Stream[Any], answer: _Answer, watch: Watch) -> Iterator[str]:
        """The text of an event stream, one delta per chunk (each a JSON object, as it came:
        see `ChatClient`)."""
        try:
            for chunk in stream:
                if not isinstance(chunk, dict):
                    raise ValueError(f"an event that is not a JSON object: {chunk!r:.200}")
                text, progressed = answer.chunk(chunk)
                if progressed:  # keep-alive comments and empty events are no progress
                    watch.clock.progressed()
                if text:
                    yield text
        finally:
            stream.close()
        # The body ended, with `data: [DONE]` or without.
        if watch.done or answer.completion.finish_reason:
            return  # some endpoints stop after the last chunk; the answer is whole
        if not answer.seen:
            raise ModelError(NOT_A_COMPLETION, retryable=True, detail="no events in the body")
        raise ModelError(
            CUT_OFF, retryable=True, detail="stream ended without [DONE] or a finish reason"
        )


class _Answer:
    """What the chunks (or the whole completion) said: into `completion` as they come."""

    def __init__(self, completion: Completion) -> None:
        self.completion = completion
        self.header_cost: Decimal | None = None
        self.seen = False
        # Tool calls stream as fragments keyed by index: [id, name, arguments so far].
        self._calls: dict[int, list[str]] = {}

    def chunk(self, chunk: dict[str, Any]) -> tuple[str, bool]:
        """The text of one chunk, and whether it carried anything (reasoning, usage, the end).

        Read as the JSON came, with no checks on its shape: a field of another type raises a
        TypeError or an AttributeError, which `_deltas` reports as not a completion.
        """
        self.seen = True
        if model := chunk.get("model"):
            self.completion.model = str(model)
        progressed = False
        if usage := chunk.get("usage"):
            self.completion.usage = self._usage(CompletionUsage.construct(**usage))
            progressed = True
        text: list[str] = []
        for choice in chunk.get("choices") or ():
            if reason := choice.get("finish_reason"):
                self.completion.finish_reason = reason
                progressed = True
            # An endpoint may leave the delta out.
            delta: dict[str, Any] | None = choice.get("delta")
            if delta is None:
                continue
            for call in delta.get("tool_calls") or ():
                parts = self._calls.setdefault(self._slot(call), ["", "", ""])
                parts[0] = parts[0] or call.get("id") or ""
                if (function := call.get("function")) is not None:
                    parts[1] = parts[1] or function.get("name") or ""
                    parts[2] += function.get("arguments") or ""
                progressed = True
            if content := delta.get("content"):
                text.append(content)
            elif delta.get("reasoning_content") or delta.get("reasoning"):
                progressed = True  # a reasoning model thinking aloud is working
        if (progressed or text) and self.completion.first_chunk is None:
            self.completion.first_chunk = time.monotonic()
        return "".join(text), progressed or bool(text)

    def whole(self, answer: ChatCompletion) -> str:
        """The text of a completion that came in one piece."""
        self.completion.streamed = False
        if answer.model:
            self.completion.model = answer.model
        if answer.usage:
            self.completion.usage = self._usage(answer.usage)
        text = []
        for choice in answer.choices or ():
            if choice.finish_reason:
                self.completion.finish_reason = choice.finish_reason
            message: ChatCompletionMessage | None = choice.message  # as the delta above
            if message is None:
                continue
            text.append(message.content or "")
            for call in message.tool_calls or ():
                function = getattr(call, "function", None)  # not a custom tool's call
                if function is not None:
                    self._calls[len(self._calls)] = [call.id, function.name, function.arguments]
        return "".join(text)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls the model asked for, in the order of their indexes; each with an id of
        its own (an endpoint may leave it out, or give two calls the same)."""
        calls: list[ToolCall] = []
        for n, index in enumerate(sorted(self._calls)):
            call_id, name, arguments = self._calls[index]
            if not call_id or any(call.id == call_id for call in calls):
                call_id = f"call_{n}"
            calls.append(ToolCall(call_id, name, arguments))
        return tuple(calls)

    def _slot(self, call: dict[str, Any]) -> int:
        """Where a streamed tool-call fragment goes: its index; without one (Gemini's and some
        Ollama versions' endpoints), the call of its id, else a new call when it has an id,
        else the call before it."""
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        call_id = call.get("id")
        for slot, (known_id, _, _) in self._calls.items():
            if call_id and known_id == call_id:
                return slot
        if call_id or not self._calls:
            return max(self._calls, default=-1) + 1
        return max(self._calls)

    def _usage(self, usage: CompletionUsage) -> TokenUsage:
        prompt = usage.prompt_tokens or 0
        written = usage.completion_tokens or 0
        # OpenRouter and LiteLLM report what the call cost in the usage; LiteLLM's proxy also
        # in a header. Other endpoints leave it out.
        cost = (usage.model_extra or {}).get("cost")
        asked, written_details = usage.prompt_tokens_details, usage.completion_tokens_details
        cached = asked.cached_tokens if asked else None
        reasoning = written_details.reasoning_tokens if written_details else None
        return TokenUsage(
            prompt=prompt,
            completion=written,
            total=usage.total_tokens or prompt + written,
            cached=cached,
            reasoning=reasoning,
            cost_usd=_decimal(cost) if _decimal(cost) is not None else self.header_cost,
        )


def _whole_answer(body: bytes) -> ChatCompletion:
    """A body not labelled an event stream: a whole `chat.completion` (or an error in a 200)."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ("choices" in answer or "error" in answer):
        raise ModelError(
            NOT_A_COMPLETION, retryable=True, detail=f"body: {body[:200].decode(errors='replace')}"
        )
    if answer.get("error"):
        raise status_error(400, answer, detail=f"error in a 200 answer: {answer['error']}")
    return ChatCompletion.construct(**answer)


def _tool_param(tool: ToolSpec) -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _header_cost(headers: httpx2.Headers) -> Decimal | None:
    return _decimal(headers.get(COST_HEADER))


def _decimal(value: object) -> Decimal | None:
    """A cost as a Decimal: a JSON number, or a header's text; None when it is neither."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _cannot_wait(status: int, wait: float, clock: Clock) -> ModelError:
    left = max(0.0, clock.left())
    state = "is rate-limiting us" if status == 429 else "is unavailable"
    return ModelError(
        f"The model's endpoint {state} and asked us to wait {wait:.0f} seconds, more than the "
        f"{left:.0f} seconds this answer has left.",
        retryable=True,
        detail=f"HTTP {status}, Retry-After {wait:.1f} s > {left:.1f} s left",
    )
