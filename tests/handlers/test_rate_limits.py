"""`app_rate_limited`: Slack's notice that the app went over the Events API's rate limit."""

from __future__ import annotations

import json
import logging

import pytest

from tests.harness import TEAM, SlackAppHarness


def test_app_rate_limited_is_logged_and_answered_200(
    app: SlackAppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "token": "unused",
        "type": "app_rate_limited",
        "team_id": TEAM,
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0001",
    }
    with caplog.at_level(logging.WARNING):
        answer = app.post(json.dumps(body).encode(), content_type="application/json")

    assert answer.status == 200
    [warning] = [r for r in caplog.records if "rate limit" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "1518467820" in warning.getMessage()


def test_app_rate_limited_with_a_bad_signature_is_refused(app: SlackAppHarness) -> None:
    body = json.dumps({"type": "app_rate_limited", "team_id": TEAM, "minute_rate_limited": 1})
    answer = app.post(body.encode(), content_type="application/json", secret="not-the-secret")
    assert answer.status == 401
