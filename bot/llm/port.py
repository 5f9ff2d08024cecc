"""The model port: what the services need of a chat model, whatever serves it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, TypedDict


class ImageURL(TypedDict):
    """Where an image part's image is: here always a `data:` URL holding the image."""

    url: str


class TextPart(TypedDict):
    """Text among a message's parts."""

    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    """An image among a message's parts (OpenAI's `image_url` content part)."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class PartsMessage(TypedDict):
    """A message whose content is a list of parts: a person's words with the images they
    shared."""

    role: str
    content: list[ContentPart]


# A message in OpenAI's chat shape: `role` and `content` (text, or for a person's words with
# the images they shared, a list of parts); for tool use an assistant's `tool_calls` (a list of
# objects, content None) or a tool's `tool_call_id`: hence values of any JSON type.
ChatMessage = dict[str, Any] | PartsMessage


def message_text(message: ChatMessage) -> str:
    """The text of a message, its parts' text joined (images left out)."""
    content = message.get("content")
    if not isinstance(content, list):
        return content or ""
    parts: list[ContentPart] = content
    return "\n".join(part["text"] for part in parts if part["type"] == "text")


def has_images(messages: Sequence[ChatMessage]) -> bool:
    """Whether any message carries an image part."""
    return any(
        isinstance(content := m.get("content"), list)
        and any(p["type"] == "image_url" for p in content)
        for m in messages
    )


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for; `arguments` is the JSON text it wrote, not yet parsed."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class TokenUsage:
    """Token counts (and the endpoint's own cost, when it reports one) for one completion."""

    prompt: int
    completion: int
    total: int
    cached: int | None = None
    reasoning: int | None = None
    cost_usd: Decimal | None = None


@dataclass
class Completion:
    """What is known about a completion once its stream ends."""

    model: str
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    # The calls the model asked for (finish_reason "tool_calls"), in the order it gave them.
    tool_calls: tuple[ToolCall, ...] = ()
    # False when the endpoint answered in one piece instead of streaming.
    streamed: bool = True
    # `time.monotonic()` of the first chunk that carried anything (text or a tool call).
    first_chunk: float | None = None


class ModelError(Exception):
    """A model call failed; `message` is fit to show to the person who asked."""

    def __init__(self, message: str, *, retryable: bool, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.detail = detail or message


@dataclass
class ChatStream:
    """Text deltas as the model writes them; `completion` is filled in when they end."""

    deltas: Iterator[str]
    completion: Completion = field(default_factory=lambda: Completion(model=""))

    def __iter__(self) -> Iterator[str]:
        return self.deltas


class ChatModel(Protocol):
    """Anything that can stream a chat completion."""

    provider: str | None

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ChatStream:
        """Start a completion; iterating the result yields text, and may raise `ModelError`.

        With `tools`, the model may answer with calls instead of (or besides) text: they are in
        `completion.tool_calls` once the text ends.
        """
        ...

    def list_models(self) -> list[str]:
        """The model ids the endpoint offers."""
        ...
