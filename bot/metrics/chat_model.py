"""A `ChatModel` that records OpenTelemetry's GenAI client metrics of every call it passes on."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from bot.llm.port import ChatMessage, ChatModel, ChatStream, ModelError, ToolSpec
from bot.metrics.recorder import Metrics, TokenType


class MeteredChatModel:
    """Wraps a `ChatModel`: same streams, timed and their reported tokens counted."""

    def __init__(self, model: ChatModel, metrics: Metrics) -> None:
        self._model = model
        self._metrics = metrics
        self.provider = model.provider

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ChatStream:
        """Start the wrapped model's stream; its end (or abandonment) is recorded."""
        started = time.monotonic()
        inner = self._model.stream(model, messages, tools=tools)
        return ChatStream(deltas=self._timed(model, inner, started), completion=inner.completion)

    def list_models(self) -> list[str]:
        """The wrapped model's list."""
        return self._model.list_models()

    def _timed(self, model: str, inner: ChatStream, started: float) -> Iterator[str]:
        first: float | None = None
        error = ""
        try:
            for delta in inner:
                if first is None:
                    first = time.monotonic() - started
                yield delta
        except ModelError as exc:
            error = _error_type(exc)
            raise
        except GeneratorExit:
            error = "cancelled"  # the reader stopped (the turn was taken over, or it broke)
            raise
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            completion = inner.completion
            usage = completion.usage
            tokens: dict[TokenType, int] | None = None
            if usage is not None:
                tokens = {"input": usage.prompt, "output": usage.completion}
            self._metrics.model_call(
                provider=self.provider or "unknown",
                request_model=model,
                response_model=completion.model or model,
                seconds=time.monotonic() - started,
                first_chunk=first if completion.streamed else None,
                tokens=tokens,
                error_type=error,
            )


def _error_type(exc: ModelError) -> str:
    # OpenTelemetry's error.type: low-cardinality. The cause's class names what went wrong
    # (openai.RateLimitError, a deadline, …) better than our one ModelError.
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__
