"""What went wrong with a model call, in words fit for the person who asked.

Messages never say "try again": the turn service adds that itself when `retryable` is set.
"""

from __future__ import annotations

import re
from typing import Any

import httpx2
import openai

from bot.llm.port import ModelError

# Endpoints agree on the shape `{"error": {"message", "type", "param", "code"}}` but not on the
# values: OpenAI sets `code`, LiteLLM puts the HTTP status there and says it in the message,
# OpenRouter puts the status in `code` and the provider's words in the message.
_UNKNOWN_MODEL = re.compile(
    r"model_not_found|invalid model|unknown model|no such model|not a valid model|"
    r"model[^.]{0,80}(does not exist|not found|not exist|is not supported|unavailable)|"
    r"no endpoints found|no (deployment|provider)s? (found )?for",
    re.IGNORECASE,
)
_CONTEXT_TOO_LONG = re.compile(
    r"context_length_exceeded|context length|context window|maximum context|"
    r"too many tokens|prompt is too long|input is too long|reduce the length|"
    r"string_above_max_length|tokens? exceed",
    re.IGNORECASE,
)
_BAD_KEY = re.compile(
    r"invalid_api_key|api[ _-]?key|authentication|unauthori[sz]ed|no auth credentials",
    re.IGNORECASE,
)
_REFUSED_CONTENT = re.compile(
    r"content_filter|content_policy|content management policy|moderation|flagged|"
    r"safety system|responsibleaipolicyviolation",
    re.IGNORECASE,
)
_NO_CREDIT = re.compile(
    r"insufficient_quota|exceeded your current quota|insufficient credits|"
    r"insufficient balance|billing",
    re.IGNORECASE,
)
_STREAMING_REFUSED = re.compile(r"\bstream", re.IGNORECASE)
# What endpoints say when a model is sent an image it cannot read: OpenAI ("image_url is only
# supported by certain models"), LiteLLM and vLLM ("does not support image input", "not a
# multimodal model"), OpenRouter ("No endpoints found that support image input").
_IMAGES_REFUSED = re.compile(
    r"image_url|image input|images? (is|are) not supported|does not support images?|"
    r"multimodal|vision",
    re.IGNORECASE,
)

UNKNOWN_MODEL = "The model's endpoint does not know this model. Pick another one with /model."
CONTEXT_TOO_LONG = (
    "This thread is too long for the model. Start a new thread, or pick a model with a "
    "larger context window."
)
BAD_KEY = "The model's endpoint refused our credentials. An admin needs to check the API key."
REFUSED_CONTENT = "The model's endpoint refused this request under its content policy."
NO_CREDIT = (
    "The model's endpoint says the account is out of credit or quota. An admin needs to "
    "check its billing."
)


def error_fields(body: object) -> tuple[str, str]:
    """The code/type/param words and the message of an error body, as two strings."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict | str):
        body = body["error"]
    if isinstance(body, str):
        return "", body
    if not isinstance(body, dict):
        return "", ""
    words = " ".join(str(body.get(key) or "") for key in ("code", "type", "param"))
    return words, str(body.get("message") or "")


def status_detail(status: int, body: object) -> str:
    """For operators (logs, the responses row): the status and the endpoint's own words."""
    words, message = error_fields(body)
    said = " ".join(message.split())[:500] or "no error message"
    codes = " ".join(w for w in words.split() if w not in ("None", "null"))
    return f"HTTP {status}: {said}" + (f" ({codes})" if codes else "")


def refuses_streaming(exc: openai.APIStatusError) -> bool:
    """Whether a 400 says the model cannot stream (asked again without streaming, it may answer)."""
    words, message = error_fields(exc.body)
    return exc.status_code == 400 and bool(
        _STREAMING_REFUSED.search(message) or "stream" in words.split()
    )


def refuses_images(exc: openai.APIStatusError) -> bool:
    """Whether a 4xx answer to a request holding images says the model cannot read them."""
    words, message = error_fields(exc.body)
    said = f"{words} {message}"
    return (
        exc.status_code in (400, 404, 422)
        and bool(_IMAGES_REFUSED.search(said))
        and not _CONTEXT_TOO_LONG.search(said)
    )


def images_refused(model: str, exc: openai.APIStatusError) -> ModelError:
    """The error of a model that does not read images, naming it and the way to another."""
    return ModelError(
        f"The model {model} cannot read images: choose one that can with /model, then ask again.",
        retryable=False,
        detail=status_detail(exc.status_code, exc.body),
    )


def status_error(status: int, body: object, detail: str) -> ModelError:
    """The error of an HTTP status and the error body that came with it."""
    words, message = error_fields(body)
    said = f"{words} {message}"
    if status == 429 and not _NO_CREDIT.search(said):
        text = "The model's endpoint is rate-limiting us right now."
        return ModelError(text, retryable=True, detail=detail)
    if status >= 500 or status in (408, 409):
        text = "The model's endpoint had an internal error."
        return ModelError(text, retryable=True, detail=detail)
    # Specific words before generic statuses: LiteLLM answers 400 for an unknown model and
    # for a bad key, OpenRouter 403 for moderation.
    for pattern, text in (
        (_NO_CREDIT, NO_CREDIT),
        (_CONTEXT_TOO_LONG, CONTEXT_TOO_LONG),
        (_REFUSED_CONTENT, REFUSED_CONTENT),
        (_UNKNOWN_MODEL, UNKNOWN_MODEL),
    ):
        if pattern.search(said):
            return ModelError(text, retryable=False, detail=detail)
    if status in (401, 403) or _BAD_KEY.search(said):
        return ModelError(BAD_KEY, retryable=False, detail=detail)
    if status == 404:
        return ModelError(UNKNOWN_MODEL, retryable=False, detail=detail)
    if status == 402:
        return ModelError(NO_CREDIT, retryable=False, detail=detail)
    text = f"The model's endpoint rejected the request (HTTP {status})."
    return ModelError(text, retryable=False, detail=detail)


def stream_error(error: Any) -> ModelError:
    """The error an endpoint reported inside a stream (OpenRouter, with an HTTP-like code)."""
    error = error if isinstance(error, dict) else {"message": error}
    code = error.get("code")
    detail = f"stream error {code}: {error.get('message')}"
    status = int(code) if isinstance(code, int) or str(code).isdigit() else 0
    if 400 <= status < 500:
        return status_error(status, error, detail)
    _, message = error_fields(error)
    if _CONTEXT_TOO_LONG.search(message) or _REFUSED_CONTENT.search(message):
        return status_error(400, error, detail)
    text = "The model's endpoint reported an error while answering."
    return ModelError(text, retryable=True, detail=detail)


def model_error(exc: openai.OpenAIError | httpx2.HTTPError) -> ModelError:
    """What to tell the person, for an error of the client or of the stream it returned."""
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc.status_code, exc.body, status_detail(exc.status_code, exc.body))
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        text = "The model took too long to answer."
        return ModelError(text, retryable=True, detail=detail)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        text = "The connection to the model broke off."
        return ModelError(text, retryable=True, detail=detail)
    text = "The model call failed unexpectedly."
    return ModelError(text, retryable=True, detail=detail)
