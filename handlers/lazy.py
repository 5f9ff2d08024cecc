"""Registering listeners that acknowledge at once and do their work afterwards.

The app runs with `process_before_response` (events are acknowledged only once stored), so a
listener's work delays Slack's acknowledgement unless it is registered lazily: the ack function
answers Slack, and the work runs after it on Bolt's listener threads (never on turn workers).

Bolt does not give a lazy function's exception to the app's error handler: it logs one line
("Failed to run an internal function") and the person hears nothing. `after_ack` runs the work
so that its errors reach `handlers.errors.report` instead, which logs them and answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack
from slack_bolt.kwargs_injection.args import Args

from handlers import errors


def acknowledge(ack: Ack) -> None:
    """Tell Slack the request arrived; what it asks for follows."""
    ack()


def after_ack(register: Callable[..., Any], work: Callable[..., Any]) -> None:
    """Register `work` to run after an empty acknowledgement; `register` is e.g. a command."""
    register(ack=acknowledge, lazy=[reporting_errors(work)])


def reporting_errors(work: Callable[..., Any]) -> Callable[[Args], None]:
    """`work` as a lazy listener whose errors go to the one error handler.

    Bolt injects the arguments a listener names; this one names `args` (all of them) and hands
    `work` those it names.
    """
    names = inspect.getfullargspec(inspect.unwrap(work)).args

    def run(args: Args) -> None:
        try:
            work(**{name: getattr(args, name) for name in names})
        except Exception as error:
            errors.report(error, args.body, args.respond)

    # Bolt finds a lazy function again by its name (FaaS adapters re-run it by name).
    run.__name__ = run.__qualname__ = getattr(work, "__name__", "work")
    return run
