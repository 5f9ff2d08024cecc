"""/usage end to end: signed slash commands into the real app, on the fake Slack API."""

from __future__ import annotations

import csv
import io
import json
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
from tests.blockkit_dump import dump
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
    # Slack took it: the fake refuses Block Kit as Slack does (tests/fakes/block_kit.py).
    assert app.slack.calls_to("response_url")[-1].response["ok"], app.slack.refused_blocks()
    dump(f"usage-{user}-{text or 'default'}", answer)
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


def table_rows(answer: dict[str, Any]) -> list[list[str]]:
    """The rows of the answer's one table block, each cell as its text (a mention as <@U>)."""
    [table] = [block for block in answer["blocks"] if block["type"] == "table"]
    return [[cell_text(cell) for cell in row] for row in table["rows"]]


def cell_text(cell: dict[str, Any]) -> str:
    if cell["type"] == "raw_text":
        return str(cell["text"])
    parts = []
    for section in cell["elements"]:
        for element in section["elements"]:
            if element["type"] == "user":
                parts.append(f"<@{element['user_id']}>")
            elif element["type"] == "channel":
                parts.append(f"<#{element['channel_id']}>")
            else:
                parts.append(element["text"])
    return "".join(parts)


def test_an_admin_sees_the_workspace_in_block_kit(app: SlackAppHarness) -> None:
    answer = run(app)
    check_block_kit_limits(answer["blocks"])
    assert answer["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Usage · last 30 days"},
    }
    shown = texts(answer)
    # 30 responses over 25 days, all in this workspace: nothing from T0002.
    assert "*Requests*\n30 · 1 error" in shown
    assert "*Tokens*\n478,500\n435,000 in the prompts · 43,500 in the answers" in shown
    assert "*Cost*\n$18.75\nnot counted: 15 answers from models with no price" in shown
    # From the totals' histogram: exactly 1,145 and 1,276 ms, within a bucket (25 %) of these.
    assert "*Completion time*\nmedian 1,155 ms · 95% within 1,394 ms" in shown
    # The period on one line, not a line a day.
    assert "*Daily cost*, " in shown and "\nBusiest days: " in shown
    assert "no requests" not in shown and "`20" not in shown
    rows = table_rows(answer)
    assert rows[:3] == [
        ["By model", "Requests", "Errors", "Tokens", "Cost", "Share of cost"],
        ["gpt-4o", "15", "1", "231,000", "$18.75", "100%"],
        ["llama-local", "15", "0", "247,500", "no price", "0%"],
    ]
    # Equal costs: the most tokens first.
    assert rows[3][0] == "By member"
    assert rows[4] == [f"<@{OTHER}>", "10", "0", "170,500", "$6.25 + 5 with no price", "33%"]
    assert {row[0] for row in rows[5:7]} == {f"<@{ADMIN}>", f"<@{MEMBER}>"}
    assert rows[7][0] == "By channel" and rows[8][0] == "<#C0001>"
    assert answer["text"] == "Usage, last 30 days: 30 requests, 478,500 tokens, $18.75"


def test_a_member_sees_their_own_usage_and_is_told_so(app: SlackAppHarness) -> None:
    answer = run(app, "", user=MEMBER)
    shown = texts(answer)
    assert "Your own usage (workspace reports are for admins)" in shown
    assert "*Requests*\n10 · 1 error" in shown
    # Their own figures, without the admins' metrics.
    assert "Completion time" not in shown and "95%" not in shown and "per 👍" not in shown
    groups = [row[0] for row in table_rows(answer) if row[1] == "Requests"]
    assert groups == ["By model", "By channel"]


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
    assert "*Requests*\n30 · 1 error" in shown
    assert "Your own usage" not in shown


def test_filters_combine(app: SlackAppHarness) -> None:
    answer = run(app, f"7d <@{OTHER}|bob> <#C0002|random> model llama-local")
    shown = texts(answer)
    assert f"Workspace · <@{OTHER}> · <#C0002> · model llama-local" in shown
    assert "*Requests*\n" in shown
    groups = [row[0] for row in table_rows(answer) if row[1] == "Requests"]
    assert groups == ["By model"]  # one member, one channel: no list of them


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
    # A year is drawn a bar a week, on one line; no list of days.
    lines = texts(answer).split("\n")
    [at] = [n for n, t in enumerate(lines) if t.startswith("*Weekly cost*, ")]
    assert lines[at].endswith(f"{today.year - 1} to {today:%b} {today.day}, {today.year}")
    assert 52 <= len(lines[at + 1]) <= 53 and set(lines[at + 1]) <= set("▁▂▃▄▅▆▇█")
    assert "no requests" not in texts(answer)


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
    assert "*Ratings by model*\n`gpt-4o`  3 answers rated · 67% 👍 · $9.38 per 👍 answer" in shown
    assert "llama-local`" not in shown  # not rated: not listed
    # A member sees how their answers were rated, not what a 👍 cost.
    assert "per 👍" not in texts(run(app, "", user=MEMBER))


def test_without_ratings_the_report_says_how_to_rate(app: SlackAppHarness) -> None:
    assert "*Ratings*\nno answers rated yet (👍/👎 under each answer)" in texts(run(app))


def test_small_costs_dms_and_failed_calls_read_as_they_are(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    """The issue's report: a channel that cost $0.000033 read `$0.00` beside a total of
    `$0.0002`, two failed calls read "2 requests unpriced", DMs read `<#D0001>`, and the
    days were a list of "no requests"."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        ada = User(team_id=TEAM, slack_user_id=MEMBER, username="ada")
        session.add(ada)
        session.flush()
        for channel, cost, status in (
            ("C0003", Decimal("0.000033"), "ok"),
            ("D0001", Decimal("0.000167"), "ok"),
            # Refused before any text, as the ledger records them: errors that cost nothing.
            ("C0003", Decimal(0), "error"),
            ("C0003", Decimal(0), "error"),
        ):
            record_response(
                session,
                team_id=TEAM,
                user_id=ada.id,
                channel_id=channel,
                model_used="gpt-4o-mini",
                tokens_prompt=0 if status == "error" else 150,
                tokens_completion=0 if status == "error" else 20,
                tokens_total=0 if status == "error" else 170,
                cost_usd=cost,
                completion_time_ms=900,
                status=status,
                created_at=now - timedelta(days=2, minutes=1),
            )
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER, name="ada")
    app = make_app()
    for user in (ADMIN, MEMBER):
        answer = run(app, "", user=user)
        shown, rows = texts(answer), table_rows(answer)
        cells = [cell for row in rows for cell in row]
        assert "*Cost*\n$0.000200\n*Tokens*" in shown
        assert "$0.00" not in cells and "$0.0000" not in cells
        channels = rows[[row[0] for row in rows].index("By channel") + 1 :]
        assert channels == [
            ["DMs", "1", "0", "170", "$0.000167", "84%"],
            ["<#C0003>", "3", "2", "170", "$0.000033", "16%"],
        ]
        # The parts add up to the total as shown.
        assert sum(Decimal(row[4].removeprefix("$")) for row in channels) == Decimal("0.0002")
        # Two errors, nothing unpriced.
        assert "*Requests*\n4 · 2 errors" in shown
        assert "price" not in shown and "unpriced" not in shown and "no price" not in cells
        assert "<#D" not in shown and "D0001" not in json.dumps(answer["blocks"])
        # One line for the period, with its busiest day.
        assert "no requests" not in shown
        [busiest] = [t for t in shown.split("\n") if t.startswith("Busiest day")]
        assert busiest.endswith("(4 requests, $0.000200)")
    assert answer["text"] == "Usage, last 30 days: 4 requests, 340 tokens, $0.000200"
