"""`python -m bot usage`, run as a real process against a real database."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Feedback, Response, UsageDaily, UsageMonthly, User
from tests.accounting import record_response
from tests.bot.shell.test_cli import run_bot


@pytest.fixture
def filled(sessions: sessionmaker[Session], db_url: str) -> str:
    """Two workspaces' responses of the last days (relative to now: the CLI reads the clock)."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        ada = User(team_id="T1", slack_user_id="U1", username="ada", full_name="Ada Lovelace")
        bob = User(team_id="T1", slack_user_id="U2", username="bob")
        eve = User(team_id="T2", slack_user_id="U1", username="eve")
        session.add_all([ada, bob, eve])
        session.flush()
        rows = [
            # user, model, hours ago, prompt, completion, cost, ms
            (ada, "gpt-4o", 1, 1000, 200, Decimal("0.0045"), 900),
            (ada, "gpt-4o", 30, 2000, 400, Decimal("0.0090"), 1100),
            (bob, "llama-local", 2, 500, 50, None, 3000),
            (bob, "gpt-4o", 24 * 10, 100, 10, Decimal("0.0004"), 700),  # 10 days ago
            (eve, "gpt-4o", 3, 1_000_000, 0, Decimal("2500"), 500),
        ]
        for user, model, hours, prompt, completion, cost, ms in rows:
            record_response(
                session,
                team_id=user.team_id,
                user_id=user.id,
                channel_id="C1",
                model_used=model,
                tokens_prompt=prompt,
                tokens_completion=completion,
                tokens_total=prompt + completion,
                cost_usd=cost,
                completion_time_ms=ms,
                created_at=now - timedelta(hours=hours),
            )
    return db_url


def usage(db_url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = run_bot("usage", *args, env={"DATABASE_URL": db_url}, cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


def test_table_is_the_default(filled: str, tmp_path: Path) -> None:
    code, out, err = usage(filled, tmp_path, "--team", "T1")
    assert (code, err) == (0, "")
    assert out.startswith("Usage for workspace T1, last 30 days (")
    assert "Requests         4 (no errors)" in out
    assert "Tokens           4,260 (3,600 in the prompts, 660 in the answers)" in out
    assert "Cost             $0.01390 (not counted: 1 answer from models with no price)" in out
    # Read from the totals' histogram: the exact figures are 1,000 and 2,715 ms; these lie in
    # the same buckets ([909, 1137) and [2776, 3469) ms), so within a quarter of them.
    assert "Completion time  median 909 ms, 95% within 3,330 ms" in out
    # The period on one line and its busiest days; no list of days.
    assert re.search(r"^Daily cost       [▁▂▃▄▅▆▇█]{30}  \(\w+ \d+ to \w+ \d+\)$", out, re.M)
    assert re.search(r"^Busiest days     \w+ \d+ \(\d+ requests?, \$[\d.]+\)", out, re.M)
    assert "Day (UTC)" not in out and "no requests" not in out
    assert "Ada Lovelace (U1)" in out
    assert "llama-local" in out


def test_every_workspace_without_team(filled: str, tmp_path: Path) -> None:
    code, out, _ = usage(filled, tmp_path)
    assert code == 0
    assert out.startswith("Usage for all workspaces")
    assert "Requests         5 (no errors)" in out
    assert "$2,500.01" in out


def test_csv(filled: str, tmp_path: Path) -> None:
    code, out, _ = usage(filled, tmp_path, "--team", "T1", "--days", "7", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    total = rows[0]
    assert (total["section"], total["requests"], total["cost_usd"]) == ("total", "3", "0.0135")
    assert total["unpriced_requests"] == "1"
    assert [row["key"] for row in rows if row["section"] == "model"] == ["gpt-4o", "llama-local"]
    assert len([row for row in rows if row["section"] == "day"]) == 7


def test_json(filled: str, tmp_path: Path) -> None:
    code, out, _ = usage(filled, tmp_path, "--user", "U1", "--format", "json")
    assert code == 0
    report = json.loads(out)
    # U1 is Ada in T1 and Eve in T2: without --team, both.
    assert report["team_id"] is None
    assert report["filters"] == ["user U1"]
    assert report["total"]["requests"] == 3
    assert report["total"]["cost_usd"] == pytest.approx(2500.0135)
    assert {user["name"] for user in report["users"]} == {"Ada Lovelace", "eve"}
    # 900 exactly; the totals' histogram says 818.5, in the same bucket [728, 909) ms.
    assert report["total"]["median_ms"] == pytest.approx(818.5)
    assert len(report["days"]) == 30


def test_filters_combine(filled: str, tmp_path: Path) -> None:
    args = ("--team", "T1", "--user", "U2", "--model", "gpt-4o", "--format", "json")
    code, out, _ = usage(filled, tmp_path, *args)
    assert code == 0
    assert json.loads(out)["total"]["requests"] == 1
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=2)).isoformat()
    period = ("--since", since, "--until", str(today))
    code, out, _ = usage(filled, tmp_path, *period, "--format", "json")
    report = json.loads(out)
    assert report["total"]["requests"] == 4
    assert report["period"]["label"] == f"{since} to {today}"
    # Everything priced: no word of prices missing (the "(0 requests unpriced…)").
    code, out, _ = usage(filled, tmp_path, "--team", "T1", "--model", "gpt-4o")
    assert code == 0 and "Cost             $" in out
    assert "unpriced" not in out and "no price" not in out and "(0 " not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2026-13-01"), "--since '2026-13-01' is not a date: use YYYY-MM-DD, "
                                   "for example --since 2026-11-01 --until 2026-11-15."),
        (("--since", "2026-11-01", "--until", "15.11.2026"), "--until '15.11.2026' is not a date"),
        (("--until", "2026-11-15"), "--until needs --since, for example --since 2026-11-01"),
        (("--since", "2026-11-15", "--until", "2026-11-01"),
         "--until 2026-11-01 is before --since 2026-11-15"),
        (("--since", "2025-01-01", "--until", "2026-06-01"),
         "spans 517 days: a report covers at most 366 days (one year)"),
        (("--days", "0"), "--days 0 is out of range: give 1 to 366 days"),
        (("--days", "400"), "--days 400 is out of range: give 1 to 366 days (one year), "
                            "for example --days 30."),
        (("--user", "U999"), "No usage recorded for user U999 in any workspace"),
        (("--team", "T1", "--user", "U1x"), "No usage recorded for user U1x in workspace T1"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    filled: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = usage(filled, tmp_path, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("switchboard: ")
    assert message in err


def test_an_unmigrated_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()  # a missing file is another message (see tests/bot/shell)
    code, _, err = usage(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    assert code == 1
    assert err.count("\n") == 1
    assert "cannot read usage from sqlite:///" in err
    assert "python -m bot migrate" in err


def test_rebuild_totals_recomputes_them_and_prints_what_it_wrote(
    filled: str, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:  # totals gone wrong: one day lost, one month inflated
        session.execute(delete(UsageDaily).where(UsageDaily.team_id == "T2"))
        session.execute(update(UsageMonthly).values(requests=UsageMonthly.requests + 100))
    code, out, err = usage(filled, tmp_path, "--rebuild-totals", "--format", "json")
    assert (code, err) == (0, "")
    assert re.fullmatch(
        r"Rebuilt the usage totals from responses: 5 daily rows and \d+ monthly rows in "
        r"\d+\.\d s\.\n",
        out,
    ), out  # and no report, whatever --format says
    code, out, _ = usage(filled, tmp_path, "--format", "json")
    assert json.loads(out)["total"]["requests"] == 5
    with sessions() as session:
        assert (
            session.scalar(
                select(func.sum(UsageMonthly.requests)).where(UsageMonthly.scope == "workspace")
            )
            == 5
        )


def test_rebuild_totals_on_an_unmigrated_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()  # a missing file is another message (see tests/bot/shell)
    code, out, err = usage(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, "--rebuild-totals")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("switchboard: cannot rebuild the usage totals in sqlite:///")
    assert "python -m bot migrate" in err


@pytest.fixture
def rated(filled: str, sessions: sessionmaker[Session]) -> str:
    """Votes on T1's answers: Ada's gpt-4o answers get 👍 and 👎, Bob's llama one 👍."""
    with sessions.begin() as session:
        answers = {
            (r.user_id, r.model_used, r.tokens_prompt): r.id
            for r in session.scalars(select(Response).where(Response.team_id == "T1"))
        }
        ids = sorted(answers.items())
        for (_, model, prompt), response_id in ids:
            rating = {("gpt-4o", 1000): "up", ("gpt-4o", 2000): "down"}.get((model, prompt))
            if model == "llama-local":
                rating = "up"
            if rating:
                session.add(
                    Feedback(
                        response_id=response_id, team_id="T1", slack_user_id="U1", rating=rating
                    )
                )
    return filled


def test_ratings_per_model_in_every_format(rated: str, tmp_path: Path) -> None:
    code, out, _ = usage(rated, tmp_path, "--team", "T1")
    assert code == 0
    assert "Ratings          3 answers rated, 67% positive, $0.00695 per positive answer" in out
    header = next(line for line in out.splitlines() if line.startswith("Model"))
    assert header.split()[-3:] == ["rated", "positive", "cost/positive"]
    gpt = next(line for line in out.splitlines() if line.startswith("gpt-4o"))
    assert gpt.split()[-3:] == ["2", "50%", "$0.01390"]
    llama = next(line for line in out.splitlines() if line.startswith("llama-local"))
    assert llama.split()[-3:] == ["1", "100%", "n/a"]  # unpriced: no cost per answer

    code, out, _ = usage(rated, tmp_path, "--team", "T1", "--format", "json")
    report = json.loads(out)
    assert report["total"]["answers_rated"] == 3 and report["total"]["answers_positive"] == 2
    models = {m["key"]: m for m in report["models"]}
    assert models["gpt-4o"]["share_positive"] == 0.5
    assert models["gpt-4o"]["cost_per_positive_usd"] == pytest.approx(0.0139)
    assert "answers_rated" not in report["users"][0]

    code, out, _ = usage(rated, tmp_path, "--team", "T1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["answers_rated"]) for r in rows if r["section"] == "model") == 3
    assert rows[0]["answers_rated"] == "3"
