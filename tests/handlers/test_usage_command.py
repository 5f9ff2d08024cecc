"""/usage end to end: signed slash commands into the real app, on the fake Slack API."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Feedback, Response, User
from tests.accounting import record_response
from tests.fakes import FakeSlackAPI
from tests.harness import TEAM, SlackAppHarness

ADMIN, MEMBER, OTHER = "U0009", "U0001", "U0002"


@pytest.fixture
def usage_rows(sessions: sessionmaker[Session]) -> None:
    """A month of responses: the admin and the member in this workspace, someone elsewhere."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        users = {
            (team, slack_id): User(team_id=team, slack_user_id=slack_id, username=slack_id.lower())
            for team, slack_id in ((TEAM, ADMIN), (TEAM, MEMBER), (TEAM, OTHER), ("T0002", MEMBER))
        }
        session.add_all(users.values())
        session.flush()
        for i in range(30):
            who = (ADMIN, MEMBER, OTHER)[i % 3]
            record_response(
                session,
                team_id=TEAM,
                user_id=users[TEAM, who].id,
                channel_id=("C0001", "C0002")[i % 2],
                model_used=("gpt-4o", "llama-local")[i % 2],
                tokens_prompt=1000 * i,
                tokens_completion=100 * i,
                tokens_total=1100 * i,
                cost_usd=None if i % 2 else Decimal("1.25"),
                completion_time_ms=1000 + 10 * i,
                status="error" if i == 4 else "ok",
                created_at=now - timedelta(hours=20 * i, minutes=1),
            )
        record_response(
            session,
            team_id="T0002",
            user_id=users["T0002", MEMBER].id,
            model_used="gpt-4o",
            tokens_total=10**9,
            cost_usd=Decimal("999999"),
            created_at=now - timedelta(hours=1),
        )


@pytest.fixture
def app(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, usage_rows: None
) -> SlackAppHarness:
    """The app with one Slack workspace admin and two members."""
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER, name="ada")
    slack.add_user(OTHER, name="bob")
    return make_app()


def run(app: SlackAppHarness, text: str = "", *, user: str = ADMIN) -> dict[str, Any]:
    """Send `/usage TEXT`; check the ack is empty; the one ephemeral answer it led to."""
    before = len(app.slack.responses)
    ack = app.command("/usage", text, user=user)
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    answers = app.slack.responses[before:]
    assert len(answers) == 1, answers
    answer = answers[0][1]
    assert answer["response_type"] == "ephemeral"
    return answer


def texts(answer: dict[str, Any]) -> str:
    """Every piece of text in the answer's blocks, one per line."""
    found = []
    for block in answer.get("blocks") or []:
        for part in [block.get("text"), *(block.get("fields") or []), *block.get("elements", [])]:
            if isinstance(part, dict) and "text" in part:
                found.append(part["text"])
    return "\n".join(found)


def check_block_kit_limits(blocks: list[dict[str, Any]]) -> None:
    """What Slack would refuse: too many blocks, fields, or characters."""
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            assert len((block.get("text") or {}).get("text", "")) <= 3000
            assert len(block.get("fields") or []) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields") or [])


def test_an_admin_sees_the_workspace_in_block_kit(app: SlackAppHarness) -> None:
    answer = run(app)
    check_block_kit_limits(answer["blocks"])
    assert answer["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Usage · last 30 days"},
    }
    shown = texts(answer)
    # 30 responses over 25 days, all in this workspace: nothing from T0002.
    assert "*Requests*\n30 · 1 errors" in shown
    assert "*Tokens*\n478,500\nprompt 435,000 · completion 43,500" in shown
    assert "*Cost*\n$18.75\n15 requests unpriced (not in the cost)" in shown
    # From the totals' histogram: exactly 1,145 and 1,276 ms, within a bucket (25 %) of these.
    assert "*Completion time*\nmedian 1,155 ms · p95 1,394 ms" in shown
    assert "*By model*\n`gpt-4o`  15 req · 231,000 tok · $18.75 · 1 errors" in shown
    assert "`llama-local`  15 req · 247,500 tok · unpriced" in shown
    # Equal costs: the most tokens first.
    assert f"*Top users*\n<@{OTHER}>  10 req · 170,500 tok · $6.25" in shown
    assert f"<@{ADMIN}>" in shown and f"<@{MEMBER}>" in shown
    assert "*Top channels*\n<#C0001>" in shown
    assert "*By day*\n`" in shown
    assert shown.count(" req ·") >= 2 + 3 + 2 + 25
    assert answer["text"].startswith("Usage, last 30 days: 30 requests, 478,500 tokens, $18.75")


def test_a_member_sees_their_own_usage_and_is_told_so(app: SlackAppHarness) -> None:
    shown = texts(run(app, "", user=MEMBER))
    assert "Your own usage (workspace reports are for admins)" in shown
    assert "*Requests*\n10 · 1 errors" in shown
    assert "Top users" not in shown


def test_a_member_cannot_see_someone_else_or_the_workspace(app: SlackAppHarness) -> None:
    answer = run(app, f"<@{ADMIN}|grace>", user=MEMBER)
    assert "blocks" not in answer or not answer["blocks"]
    assert answer["text"].startswith(":no_entry: Only workspace admins can see other people's")
    assert "whole workspace" in run(app, "all", user=MEMBER)["text"]


def test_admin_user_ids_see_the_workspace(
    make_app: Callable[..., SlackAppHarness], usage_rows: None, slack: FakeSlackAPI
) -> None:
    slack.add_user(MEMBER, name="ada")
    app = make_app(admin_user_ids=frozenset({MEMBER}))
    shown = texts(run(app, "", user=MEMBER))
    assert "*Requests*\n30 · 1 errors" in shown
    assert "Your own usage" not in shown


def test_filters_combine(app: SlackAppHarness) -> None:
    shown = texts(run(app, f"7d <@{OTHER}|bob> <#C0002|random> model llama-local"))
    assert f"Workspace · <@{OTHER}> · <#C0002> · model llama-local" in shown
    assert "Top users" not in shown and "Top channels" not in shown
    assert "*Requests*\n" in shown


def test_csv_goes_to_the_callers_dms(app: SlackAppHarness, slack: FakeSlackAPI) -> None:
    answer = run(app, "csv 7d")
    assert "to your DMs with me" in answer["text"]
    [opened] = slack.calls_to("conversations.open")
    assert opened.args["users"] == ADMIN
    [completed] = slack.calls_to("files.completeUploadExternal")
    assert completed.args["channel_id"] == f"D{ADMIN}"
    [file] = completed.arg("files")
    assert file["title"] == "Usage, last 7 days"
    [requested] = slack.calls_to("files.getUploadURLExternal")
    assert requested.args["filename"].startswith(f"usage-{TEAM}-")
    assert requested.args["filename"] in answer["text"]
    rows = list(csv.DictReader(io.StringIO(slack.uploads[file["id"]].decode())))
    assert rows[0]["section"] == "total"
    assert {row["section"] for row in rows} == {"total", "model", "user", "channel", "day"}
    assert int(rows[0]["requests"]) == sum(
        int(row["requests"]) for row in rows if row["section"] == "day"
    )


def test_a_failed_upload_is_explained(app: SlackAppHarness, slack: FakeSlackAPI) -> None:
    slack.fail("files.getUploadURLExternal", "not_allowed_token_type")
    answer = run(app, "csv")
    assert answer["text"].startswith(":warning: I could not send the CSV to your DMs")
    assert "not_allowed_token_type" in answer["text"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("yesterday", "I don't understand “yesterday”"),
        ("7x", "“7x” is not a period I know"),
        ("2026-02-30..2026-03-01", "“2026-02-30” is not a date"),
        ("500d", "longer than a year"),
        ("<@U0404|ghost>", "No usage recorded for <@U0404>"),
        ("<#C0404|nowhere>", "No usage recorded in <#C0404>"),
        ("model gpt-5", "No usage recorded for model `gpt-5`"),
    ],
)
def test_bad_input_gets_an_ephemeral_explanation(
    app: SlackAppHarness, text: str, names: str
) -> None:
    answer = run(app, text)
    assert answer["text"].startswith(":no_entry: ")
    assert names in answer["text"]
    assert "for example" in answer["text"].lower()


def test_help(app: SlackAppHarness) -> None:
    text = run(app, "help")["text"]
    assert "*/usage*" in text and "`csv`" in text and "`2026-11-01..2026-11-15`" in text


def test_a_year_fits_in_one_message(app: SlackAppHarness) -> None:
    today = datetime.now(UTC).date()
    answer = run(app, f"{today - timedelta(days=365)}..{today}")
    check_block_kit_limits(answer["blocks"])
    assert texts(answer).count("no requests") > 300


def test_an_empty_period_says_so(app: SlackAppHarness) -> None:
    answer = run(app, "2020-01-01..2020-01-31")
    assert "No usage recorded in this period." in texts(answer)


def test_the_command_is_acknowledged_before_slow_work(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    slack.delay("users.info", 1.5)  # the admin check asks Slack
    started = time.monotonic()
    ack = app.command("/usage", "", user=ADMIN)
    assert time.monotonic() - started < 1.0
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    assert slack.responses[-1][1]["text"].startswith("Usage, last 30 days")


def test_ratings_per_model_beside_requests_tokens_and_cost(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        gpt = session.scalars(
            select(Response.id).where(Response.team_id == TEAM, Response.model_used == "gpt-4o")
        ).all()
        for response_id, rating in zip(gpt[:3], ("up", "up", "down"), strict=True):
            session.add(
                Feedback(response_id=response_id, team_id=TEAM, slack_user_id=MEMBER, rating=rating)
            )
        # Another workspace's vote on its own answer is not this workspace's rating.
        other = session.scalars(select(Response.id).where(Response.team_id == "T0002")).one()
        session.add(Feedback(response_id=other, team_id="T0002", slack_user_id=MEMBER, rating="up"))
    answer = run(app)
    check_block_kit_limits(answer["blocks"])
    shown = texts(answer)
    assert "*Ratings*\n3 answers rated · 67% 👍\n$9.38 per 👍 answer" in shown
    assert (
        "`gpt-4o`  15 req · 231,000 tok · $18.75 · 1 errors · 3 rated · 67% 👍 · $9.38/👍" in shown
    )
    assert "`llama-local`  15 req · 247,500 tok · unpriced · not rated" in shown


def test_without_ratings_the_report_says_how_to_rate(app: SlackAppHarness) -> None:
    assert "*Ratings*\nno answers rated (👍/👎 under each answer)" in texts(run(app))
