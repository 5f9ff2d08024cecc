"""Deadlines of one answer, against the loopback endpoint: first token, silences, and in all."""

from __future__ import annotations

import email.utils
import time

import pytest

from bot.llm.deadlines import Deadlines
from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ModelError
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
FAST = Deadlines(first_token=0.5, idle=0.5, total=2.0)


def chat(model: FakeOpenAI, deadlines: Deadlines = FAST, *, retries: int = 0) -> OpenAIChatModel:
    # The client's own timeout is long: only the deadlines may end these answers.
    client = build_client(
        base_url=model.base_url, api_key="sk-test", max_retries=retries, timeout=30
    )
    return OpenAIChatModel(client, deadlines=deadlines)


def run(chat_model: OpenAIChatModel) -> tuple[list[str], ModelError, float]:
    """What was received before the answer failed, the failure, and how long it took."""
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(ModelError) as failed:
        for delta in chat_model.stream("gpt-4o-mini", QUESTION):
            received.append(delta)
    return received, failed.value, time.monotonic() - started


def test_an_endpoint_that_never_sends_headers_fails_at_the_first_token_deadline(
    model: FakeOpenAI,
) -> None:
    model.enqueue(FakeReply(hang=30))
    received, error, took = run(chat(model, Deadlines(first_token=0.5, idle=5, total=10)))
    assert received == []
    assert 0.45 < took < 1.0
    assert "took too long to start answering" in error.message
    assert error.retryable


def test_a_stream_that_stalls_midway_fails_at_the_idle_deadline(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="Slow and then silent", chunk_size=5, chunk_delay=30))
    received, error, took = run(chat(model))
    assert received == ["Slow "]
    assert 0.45 < took < 1.0
    assert "stopped writing for over 0.5 seconds" in error.message


def test_keep_alive_comments_are_not_progress(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(keep_alive=0.05))
    received, error, took = run(chat(model))
    assert received == []
    assert 0.45 < took < 1.0
    assert "took too long to start answering" in error.message


def test_reasoning_streamed_before_the_text_is_progress(model: FakeOpenAI) -> None:
    thinking = 'data: {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}\n\n'
    model.enqueue(
        FakeReply(
            text="Thought it through.", keep_alive=0.1, keep_alives=8, keep_alive_text=thinking
        )
    )
    stream = chat(model).stream("deepseek-reasoner", QUESTION)
    assert "".join(stream) == "Thought it through."  # 0.8 s of thinking, past the 0.5 s


def test_a_total_deadline_ends_an_answer_that_trickles_on(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="word " * 100, chunk_size=5, chunk_delay=0.1))
    received, error, took = run(chat(model, Deadlines(first_token=0.5, idle=0.5, total=1.0)))
    assert 5 <= len(received) <= 12
    assert 0.95 < took < 1.4
    assert "not done after 1 seconds" in error.message
    assert error.retryable


def test_a_retry_happens_inside_the_total_deadline(model: FakeOpenAI) -> None:
    model.enqueue(
        FakeReply(status=500, hang=0.4, headers={"Retry-After-Ms": "100"}),
        FakeReply(text="word " * 100, chunk_size=5, chunk_delay=0.1),
    )
    received, error, took = run(chat(model, Deadlines(first_token=1, idle=1, total=1.2), retries=1))
    assert len(model.completions()) == 2
    assert received  # the second attempt wrote, until the deadline of the whole answer
    assert 1.15 < took < 1.6
    assert "not done after 1.2 seconds" in error.message


def test_a_retry_that_the_deadline_cannot_cover_fails_at_once(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(status=429, headers={"Retry-After": "90"}))
    _, error, took = run(chat(model, Deadlines(first_token=60, idle=60, total=300), retries=1))
    assert took < 0.5
    assert len(model.completions()) == 1
    assert "asked us to wait 90 seconds" in error.message
    assert error.retryable


def test_a_short_retry_after_is_waited_out(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(status=429, headers={"Retry-After": "0.2"}), FakeReply(text="Now."))
    stream = chat(model, retries=1).stream("gpt-4o-mini", QUESTION)
    assert "".join(stream) == "Now."
    first, second = model.completions()
    assert second["_at"] - first["_at"] >= 0.2


def test_the_client_timeout_stands_in_when_no_deadlines_are_given(model: FakeOpenAI) -> None:
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=0.5)
    model.enqueue(FakeReply(hang=30))
    _, error, took = run(OpenAIChatModel(client))
    assert 0.45 < took < 1.0
    assert "took too long" in error.message


def test_a_retry_after_date_beyond_the_deadline_fails_at_once(model: FakeOpenAI) -> None:
    later = email.utils.formatdate(time.time() + 600, usegmt=True)
    model.enqueue(FakeReply(status=503, headers={"Retry-After": later}))
    _, error, took = run(chat(model, retries=2))
    assert took < 0.5
    assert "asked us to wait" in error.message
