"""Deadlines of one answer, against the loopback endpoint: first token, silences, and in all.

Where our code decides (after each read of the body, before each retry) the answer runs on a
test clock, so no test depends on how busy the machine is; where the HTTP client's read
timeout decides (no headers, a silent body), the figures are wall-clock seconds.
"""

from __future__ import annotations

import email.utils
import time

import pytest

from bot.llm.deadlines import Clock, Deadlines, Now
from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ModelError
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
FAST = Deadlines(first_token=0.5, idle=0.5, total=2.0)


class ManualClock:
    """Monotonic seconds that move only when the test says, or by `step` on every reading."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def chat(
    model: FakeOpenAI,
    deadlines: Deadlines = FAST,
    *,
    retries: int = 0,
    clock: Now = time.monotonic,
) -> OpenAIChatModel:
    # The client's own timeout is long: only the deadlines may end these answers.
    client = build_client(
        base_url=model.base_url, api_key="sk-test", max_retries=retries, timeout=30
    )
    return OpenAIChatModel(client, deadlines=deadlines, clock=clock)


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
    # Each reading of the clock is 0.05 s later: the 0.5 s run out while comments arrive.
    model.enqueue(FakeReply(keep_alive=0.02))
    received, error, _ = run(chat(model, clock=ManualClock(step=0.05)))
    assert received == []
    assert "took too long to start answering" in error.message


def test_reasoning_streamed_before_the_text_is_progress(model: FakeOpenAI) -> None:
    thinking = 'data: {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}\n\n'
    model.enqueue(
        FakeReply(
            text="Thought it through.", keep_alive=0.02, keep_alives=8, keep_alive_text=thinking
        )
    )
    # 0.1 s a reading: over a second of thinking, past the 0.5 s, each event in time.
    stream = chat(model, clock=ManualClock(step=0.1)).stream("deepseek-reasoner", QUESTION)
    assert "".join(stream) == "Thought it through."


def test_a_total_deadline_ends_an_answer_that_trickles_on(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="word " * 100, chunk_size=5, chunk_delay=0.05))
    deadlines = Deadlines(first_token=0.5, idle=0.5, total=1.0)
    received, error, _ = run(chat(model, deadlines, clock=ManualClock(step=0.1)))
    assert 3 <= len(received) <= 10  # a read each 0.1 s, after the request's own readings
    assert "not done after 1 seconds" in error.message
    assert error.retryable


def test_a_retry_happens_inside_the_total_deadline(model: FakeOpenAI) -> None:
    model.enqueue(
        FakeReply(status=500, hang=0.2, headers={"Retry-After-Ms": "100"}),
        FakeReply(text="word " * 100, chunk_size=5, chunk_delay=0.05),
    )
    deadlines = Deadlines(first_token=1, idle=1, total=1.2)
    received, error, _ = run(chat(model, deadlines, retries=1, clock=ManualClock(step=0.1)))
    assert len(model.completions()) == 2
    assert received  # the second attempt wrote, until the deadline of the whole answer
    assert len(received) < 100
    assert "not done after 1.2 seconds" in error.message


def test_no_attempt_starts_after_the_deadline(model: FakeOpenAI) -> None:
    # Each request the endpoint sees takes 0.6 s on this clock: past the 0.5 s to the first
    # token, so the client's retry after its backoff is not sent.
    def clock() -> float:
        return 1000.0 + 0.6 * len(model.completions())

    model.enqueue(FakeReply(status=503), FakeReply(text="Too late."))
    _, error, _ = run(chat(model, retries=2, clock=clock))
    assert len(model.completions()) == 1
    assert "took too long to start answering" in error.message
    assert error.retryable


def test_a_retry_that_the_deadline_cannot_cover_fails_at_once(model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(status=429, headers={"Retry-After": "90"}))
    deadlines = Deadlines(first_token=60, idle=60, total=300)
    _, error, _ = run(chat(model, deadlines, retries=1, clock=ManualClock()))
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
    _, error, _ = run(chat(model, retries=2, clock=ManualClock()))
    assert len(model.completions()) == 1
    assert "asked us to wait" in error.message


# ----- the clock alone ---------------------------------------------------------------------


def test_the_first_token_deadline_holds_until_the_model_writes() -> None:
    now = ManualClock()
    clock = Clock(Deadlines(first_token=10, idle=2, total=60), now)
    clock.check(now.now + 9.9)
    with pytest.raises(ModelError, match="took too long to start answering"):
        clock.check(now.now + 10)


def test_after_the_first_token_each_silence_has_the_idle_deadline() -> None:
    now = ManualClock()
    clock = Clock(Deadlines(first_token=10, idle=2, total=60), now)
    now.now += 5
    clock.read()
    clock.progressed()
    clock.check(now.now + 1.9)
    now.now += 1.5
    clock.read()  # a keep-alive: no progress
    with pytest.raises(ModelError, match="stopped writing for over 2 seconds"):
        clock.check(now.now + 0.5)


def test_the_total_deadline_holds_however_the_model_writes() -> None:
    now = ManualClock()
    clock = Clock(Deadlines(first_token=10, idle=2, total=5), now)
    for _ in range(4):
        now.now += 1
        clock.read()
        clock.progressed()
        clock.check(now.now)
    now.now += 1
    clock.read()
    clock.progressed()
    with pytest.raises(ModelError, match="not done after 5 seconds"):
        clock.check(now.now)


def test_an_attempt_gets_the_time_left_and_none_after_the_deadline() -> None:
    now = ManualClock()
    clock = Clock(Deadlines(first_token=30, idle=5, total=60), now)
    now.now += 25
    assert clock.request_timeouts() == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    now.now += 5
    with pytest.raises(ModelError, match="took too long to start answering"):
        clock.request_timeouts()


def test_the_body_waits_for_the_first_token_or_the_idle_timeout_whichever_is_longer() -> None:
    now = ManualClock()
    clock = Clock(Deadlines(first_token=30, idle=5, total=60), now)
    now.now += 10
    assert clock.body_read_timeout() == 20.0
    now.now += 18
    assert clock.body_read_timeout() == 5.0
    now.now += 29
    assert clock.body_read_timeout() == 3.0  # capped by the total
