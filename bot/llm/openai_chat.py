"""The `openai` adapter of the model port: stream a chat completion from any compatible endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from bot.llm.port import ChatMessage, ChatStream, Completion, ModelError, TokenUsage
from bot.llm.sse import EventStream, ResponseEndings


def build_client(
    *, api_key: str | None, base_url: str | None, timeout: float, **kwargs: Any
) -> openai.OpenAI:
    """The `openai` client for an endpoint (`kwargs`: `max_retries`, `http_client`, …)."""
    return openai.OpenAI(api_key=api_key or "unused", base_url=base_url, timeout=timeout, **kwargs)


def provider_name(base_url: str | None) -> str | None:
    """A short provider name guessed from the endpoint's host (used for pricing and reports)."""
    host = urlsplit(base_url).hostname if base_url else "api.openai.com"
    if host is None:
        return None
    for needle, name in (
        ("openai.azure.com", "azure"),
        ("openai.com", "openai"),
        ("openrouter.ai", "openrouter"),
        ("anthropic.com", "anthropic"),
        ("groq.com", "groq"),
        ("mistral.ai", "mistral"),
        ("deepseek.com", "deepseek"),
        ("together", "together"),
        ("fireworks.ai", "fireworks"),
    ):
        if needle in host:
            return name
    if urlsplit(base_url).port == 11434:
        return "ollama"
    return host


class OpenAIChatModel:
    """`ChatModel` on the official `openai` client."""

    def __init__(self, client: openai.OpenAI, *, provider: str | None = None) -> None:
        self._client = client
        self.provider = provider
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
            raise _model_error(exc) from exc

    def _deltas(
        self, model: str, messages: list[ChatMessage], completion: Completion
    ) -> Iterator[str]:
        # `POST /chat/completions` through the client (its auth, retries, timeouts and errors),
        # reading the event stream ourselves, for two reasons:
        # - `chat.completions.create` runs every message through `maybe_transform`, which
        #   costs about 0.6 ms for 2 messages and 13 ms for 60, all of it holding the GIL;
        # - its `Stream` stops reading at `data: [DONE]` and so closes the connection
        #   instead of returning it to the pool (openai-python#3440): a new TCP and TLS
        #   handshake for every reply. We hand the end of the body to `ResponseEndings`.
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        response: httpx2.Response | None = None
        try:
            response = self._client.post(
                "/chat/completions",
                body=body,
                cast_to=httpx2.Response,
                stream=True,
                options={"security": {"bearer_auth": True}},
            )
            # One delta per read from the network: what arrived together goes on together.
            chunks = response.iter_bytes()
            events = EventStream()
            for received in chunks:
                text, done, failure = _read_events(events.feed(received), completion)
                if text:
                    yield text
                if failure is not None:
                    raise failure
                if done:
                    self._endings.finish(response, chunks)
                    response = None  # the endings close it
                    return
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise _model_error(exc) from exc
        except (ValueError, TypeError, AttributeError) as exc:  # JSON of another shape
            raise ModelError(
                "The model's endpoint sent something that is not a chat completion stream.",
                retryable=True,
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        finally:
            if response is not None:
                response.close()


def _read_events(events: list[str], completion: Completion) -> tuple[str, bool, ModelError | None]:
    """The text of some events, whether they end the stream, and the error one reported.

    Text before an error is kept: the person sees what was written before it broke off.
    """
    text = []
    for data in events:
        if data.startswith("[DONE]"):
            return "".join(text), True, None
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"an event that is not a JSON object: {data[:200]}")
        try:
            text.extend(_read_chunk(chunk, completion))
        except ModelError as failure:
            return "".join(text), False, failure
    return "".join(text), False, None


def _read_chunk(chunk: dict[str, Any], completion: Completion) -> Iterator[str]:
    """The text of one `chat.completion.chunk`, noting its model, usage and finish reason."""
    error = chunk.get("error")
    if error:
        # OpenRouter reports a provider's failure this way, with an HTTP-like code.
        error = error if isinstance(error, dict) else {"message": error}
        code = error.get("code")
        if isinstance(code, int) and 400 <= code < 500 and code not in (408, 429):
            text = "The model's endpoint refused the request while answering."
            retryable = False
        else:
            text = "The model's endpoint reported an error while answering. Try again in a moment."
            retryable = True
        raise ModelError(
            text, retryable=retryable, detail=f"stream error {code}: {error.get('message')}"
        )
    if chunk.get("model"):
        completion.model = chunk["model"]
    if chunk.get("usage"):
        completion.usage = _usage(chunk["usage"])
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            completion.finish_reason = choice["finish_reason"]
        content = (choice.get("delta") or {}).get("content")
        if content:
            yield content


def _usage(usage: dict[str, Any]) -> TokenUsage:
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    # OpenRouter reports what the call cost; other endpoints leave it out.
    cost = usage.get("cost")
    return TokenUsage(
        prompt=prompt,
        completion=completion,
        total=usage.get("total_tokens") or prompt + completion,
        cached=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        cost_usd=Decimal(str(cost)) if isinstance(cost, int | float) else None,
    )


def _model_error(exc: openai.OpenAIError | httpx2.HTTPError) -> ModelError:
    """What to tell the person, for an error of the client or of the stream it returned."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, openai.RateLimitError):
        text = "The model's endpoint is rate-limiting us right now. Try again in a minute."
        return ModelError(text, retryable=True, detail=detail)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        text = "The model took too long to answer. Try again, or pick a faster model."
        return ModelError(text, retryable=True, detail=detail)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        text = "The model's endpoint refused our credentials. An admin needs to check the API key."
        return ModelError(text, retryable=False, detail=detail)
    if isinstance(exc, openai.NotFoundError):
        text = "The model's endpoint does not know this model. Pick another one with /model."
        return ModelError(text, retryable=False, detail=detail)
    if isinstance(exc, openai.BadRequestError):
        text = "The model's endpoint rejected the request (the thread may be too long for it)."
        return ModelError(text, retryable=False, detail=detail)
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        text = "The model's endpoint had an internal error. Try again in a moment."
        return ModelError(text, retryable=True, detail=detail)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        text = "The connection to the model broke off. Try again in a moment."
        return ModelError(text, retryable=True, detail=detail)
    text = "The model call failed unexpectedly. Try again in a moment."
    return ModelError(text, retryable=True, detail=detail)
