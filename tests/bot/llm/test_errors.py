"""What the person is told when the endpoint refuses, by the error body it sends back."""

from __future__ import annotations

from typing import Any

import pytest

from bot.llm.deadlines import Deadlines
from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ModelError
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
UNKNOWN_MODEL = "does not know this model"
TOO_LONG = "too long for the model"
BAD_KEY = "refused our credentials"
REFUSED = "content policy"


def error(
    message: str, type: str | None = None, param: str | None = None, code: object = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "says", "retryable"),
    [
        pytest.param(
            404,
            error("The model `gpt-9` does not exist", "invalid_request_error", None,
                  "model_not_found"),
            UNKNOWN_MODEL, False, id="openai-unknown-model",
        ),
        pytest.param(
            400,
            error(
                "litellm.BadRequestError: Invalid model name passed in model=gpt-9. Call "
                "`/v1/models` to view available models for your key.", "None", "None", "400",
            ),
            UNKNOWN_MODEL, False, id="litellm-unknown-model",
        ),
        pytest.param(
            400, {"error": {"message": "gpt-9 is not a valid model ID", "code": 400}},
            UNKNOWN_MODEL, False, id="openrouter-unknown-model",
        ),
        pytest.param(
            400,
            error(
                "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130419 tokens.", "invalid_request_error", "messages",
                "context_length_exceeded",
            ),
            TOO_LONG, False, id="openai-context-too-long",
        ),
        pytest.param(
            400,
            error(
                "litellm.ContextWindowExceededError: prompt is too long: 210000 tokens > "
                "200000 maximum", "None", "None", "400",
            ),
            TOO_LONG, False, id="litellm-context-too-long",
        ),
        pytest.param(
            401,
            error("Incorrect API key provided: sk-abc***wxyz.", "invalid_request_error", None,
                  "invalid_api_key"),
            BAD_KEY, False, id="openai-bad-key",
        ),
        pytest.param(
            400,
            error("Authentication Error, Invalid proxy server token passed. Received API Key = "
                  "sk-...abcd", "auth_error", "None", "400"),
            BAD_KEY, False, id="litellm-bad-key-as-400",
        ),
        pytest.param(
            400,
            error("The response was filtered due to the prompt triggering Azure OpenAI's content "
                  "management policy.", None, "prompt", "content_filter"),
            REFUSED, False, id="azure-content-filter",
        ),
        pytest.param(
            403,
            {"error": {"code": 403, "message": "gpt-4o requires moderation on OpenAI. Your input "
                       "was flagged for \"harassment\".", "metadata": {"reasons": ["harassment"]}}},
            REFUSED, False, id="openrouter-moderation",
        ),
        pytest.param(
            429,
            error("You exceeded your current quota, please check your plan and billing details.",
                  "insufficient_quota", None, "insufficient_quota"),
            "out of credit", False, id="openai-no-quota",
        ),
        pytest.param(
            400,
            error("Invalid value for 'temperature': must be at most 2.", "invalid_request_error",
                  "temperature", "invalid_value"),
            "rejected the request (HTTP 400)", False, id="other-400",
        ),
        pytest.param(429, None, "rate-limiting", True, id="rate-limited"),
        pytest.param(503, None, "internal error", True, id="server-error"),
    ],
)  # fmt: skip
def test_an_error_body_is_read_to_say_what_went_wrong(
    model: FakeOpenAI, status: int, body: dict | None, says: str, retryable: bool
) -> None:
    model.enqueue(FakeReply(status=status, error_body=body))
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(ModelError) as failed:
        list(OpenAIChatModel(client).stream("gpt-9", QUESTION))
    assert says in failed.value.message
    assert failed.value.retryable is retryable
    assert "try again" not in failed.value.message.lower()  # the service says it once


def test_an_error_event_mid_stream_is_read_the_same_way(model: FakeOpenAI) -> None:
    too_long = {"message": "This model's maximum context length is 8192 tokens", "code": 400}
    model.enqueue(FakeReply(cut_after=0, stream_error=too_long))
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(ModelError) as failed:
        list(OpenAIChatModel(client).stream("gpt-4o-mini", QUESTION))
    assert TOO_LONG in failed.value.message
    assert not failed.value.retryable


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply(hang=5),
        FakeReply(text="Cut", chunk_size=1, cut_after=1),
        FakeReply(text="x", preamble="data: <html>\n\n"),
        FakeReply(cut_after=0, stream_error={"message": "Provider returned error", "code": 502}),
    ],
)
def test_no_message_says_try_again_itself(model: FakeOpenAI, reply: FakeReply) -> None:
    model.enqueue(reply)
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0)
    chat = OpenAIChatModel(client, deadlines=Deadlines(first_token=0.3, idle=0.3, total=1))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert failed.value.retryable
    assert "try again" not in failed.value.message.lower()
