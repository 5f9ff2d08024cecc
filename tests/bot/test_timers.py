"""Delayed calls on one shared thread."""

from __future__ import annotations

import threading
import time

from bot.timers import Timers


def test_calls_are_made_in_order_of_their_time() -> None:
    timers = Timers()
    made: list[tuple[str, float]] = []
    all_made = threading.Barrier(4)

    def record(name: str) -> None:
        made.append((name, time.monotonic() - started))
        all_made.wait(timeout=5)

    started = time.monotonic()
    timers.call_later(1.0, lambda: record("late"))
    timers.call_later(0.1, lambda: record("early"))  # sooner than the one already waited for
    timers.call_later(0.5, lambda: record("middle"))
    all_made.wait(timeout=5)
    assert [name for name, _ in made] == ["early", "middle", "late"]
    at = dict(made)
    assert 0.1 <= at["early"] < 0.4  # not kept waiting for the later call
    assert at["late"] >= 1.0


def test_a_cancelled_call_is_not_made() -> None:
    timers = Timers()
    made = threading.Event()
    after = threading.Event()
    timers.call_later(0.05, made.set).cancel()
    timers.call_later(0.1, after.set)
    assert after.wait(timeout=5)
    assert not made.is_set()


def test_a_slow_call_does_not_hold_up_the_next() -> None:
    timers = Timers()
    release = threading.Event()
    second = threading.Event()
    timers.call_later(0.01, lambda: release.wait(timeout=5))
    timers.call_later(0.05, second.set)
    assert second.wait(timeout=2)
    release.set()
