"""Errors raised after the acknowledgement reach the one error handler and get a plain reply."""

from __future__ import annotations

import logging

import pytest

from handlers.errors import SOMETHING_WENT_WRONG
from tests.fakes import FakeSlackAPI
from tests.harness import SlackAppHarness


def test_a_nul_byte_in_a_slash_command_gets_a_reply(
    app: SlackAppHarness, slack: FakeSlackAPI, db_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL refuses NUL in text ("A string literal cannot contain NUL"), raised in the
    # command's work after Slack was acknowledged; SQLite takes it. Either way, a reply.
    with caplog.at_level(logging.WARNING):
        assert app.command("/usage", "model a\x00b").status == 200
        [(_, reply)] = slack.wait_for_response(timeout=10)
    assert reply.get("response_type") == "ephemeral"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if db_backend == "postgresql":
        assert reply["text"] == SOMETHING_WENT_WRONG
        # Logged once, by our handler (Bolt's lazy runner would log a line of its own).
        assert [r.name for r in failures] == ["handlers.errors"]
        assert "Failed to run" not in caplog.text
    else:
        assert reply["text"] != SOMETHING_WENT_WRONG  # an ordinary (empty) report
        assert failures == []
