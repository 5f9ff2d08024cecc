"""`python -m bot budget`: the command line's own entry point, on a real database.

Most tests call `main` in this process (the same argument parsing, settings and exit codes,
without a second's interpreter start per line); one runs the real process.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.shell.cli import main
from tests.bot.shell.test_cli import run_bot
from tests.handlers.test_budgets import MONTH, RESETS, budgets, spend

TEAM = "T0001"
Shell = Callable[..., tuple[int, str, str]]


@pytest.fixture
def shell(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Shell:
    """`shell(*words)`: run `budget WORDS` in this process; (exit code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", db_url)

    def run(*words: str) -> tuple[int, str, str]:
        code = main(["budget", *words])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_an_operator_sets_shows_and_clears_limits(
    shell: Shell, sessions: sessionmaker[Session]
) -> None:
    spend(sessions, user="U0001", channel="C0002", usd=Decimal("1.50"), tokens=300)
    so_far = f"spent in {MONTH} so far). It resets on {RESETS} (UTC).\n"
    assert shell("--team", TEAM, "set", "workspace", "500") == (
        0,
        f"Set: the workspace may use $500.00 a month ($1.50 and 300 tokens {so_far}",
        "",
    )
    assert shell("--team", TEAM, "set", "channel", "C0002", "50", "2M", "tokens") == (
        0,
        f"Set: #C0002 may use $50.00 and 2,000,000 tokens a month ($1.50 and 300 tokens {so_far}",
        "",
    )
    assert shell("--team", TEAM, "set", "user", "U0001", "20")[1].startswith(
        "Set: @U0001 may use $20.00 a month ($1.50 and 300 tokens spent"
    )
    assert shell("--team", TEAM, "set", "default-user", "10")[0] == 0
    assert budgets(sessions) == {
        ("workspace", "", Decimal(500), None, None),
        ("channel", "C0002", Decimal(50), 2_000_000, None),
        ("user", "U0001", Decimal(20), None, None),
        ("default_user", "", Decimal(10), None, None),
    }

    code, out, err = shell("--team", TEAM)  # show is the default
    assert (code, err) == (0, "")
    assert out.split("\n")[:5] == [
        f"Monthly budgets ({MONTH}; they reset on {RESETS}, UTC)",
        "• The workspace: $500.00, $1.50 and 300 tokens spent (0%) (set by an operator)",
        "• #C0002: $50.00 and 2,000,000 tokens, $1.50 and 300 tokens spent (3%) "
        "(set by an operator)",
        "• Each member (by default): $10.00 (set by an operator)",
        "• @U0001: $20.00, $1.50 and 300 tokens spent (8%) (set by an operator)",
    ]
    assert "*" not in out and "<" not in out

    assert shell("--team", TEAM, "clear", "user", "U0001") == (
        0,
        "Removed the monthly limit on @U0001.\n",
        "",
    )
    assert shell("--team", TEAM, "clear", "channel", "<#C0002>")[1] == (
        "Removed the monthly limit on #C0002.\n"
    )
    assert shell("--team", TEAM, "clear", "channel", "C0002")[1] == (
        "There is no limit on #C0002: nothing changed.\n"
    )
    assert len(budgets(sessions)) == 2
    assert shell("--team", "T0002", "show")[1].startswith(
        f"Monthly budgets ({MONTH}; they reset on {RESETS}, UTC)\nNo limits are set"
    )


def test_bad_input_is_one_line_on_stderr_and_changes_nothing(
    shell: Shell, sessions: sessionmaker[Session]
) -> None:
    assert shell("--team", TEAM, "set", "workspace", "100")[0] == 0
    before = budgets(sessions)
    cases = {
        ("set", "workspace", "-5"): "“-5” is negative: a limit is a positive amount in USD",
        ("set", "workspace", "abc"): "“abc” is not an amount",
        ("set", "channel", "#support", "5"): "I can't tell which channel “#support” is",
        ("set", "user", "@ana", "5"): "“@ana” is not a Slack member id: give one such as "
        "U012ABCDEF (their profile → ⋮ → Copy member ID).",
        ("set", "user", "5"): "Name the user after `user`",
        ("clear",): "`budget clear` needs a scope",
    }
    for words, says in cases.items():
        code, out, err = shell("--team", TEAM, *words)
        assert (code, out) == (2, ""), words
        assert err.startswith(f"switchboard: {says}"), (words, err)
        assert err.count("\n") == 1, err
    assert shell("set", "workspace", "5") == (
        2,
        "",
        "switchboard: budget needs --team, the workspace id, for example "
        "`python -m bot budget --team T012ABCDEF show`.\n",
    )
    assert budgets(sessions) == before


def test_the_shell_speaks_of_channel_ids_and_its_own_command(shell: Shell) -> None:
    """No Slack advice (“as you type #”) and no `/usage budget` in the shell's messages."""
    messages = [
        shell("--team", TEAM, "help")[2],
        shell("--team", TEAM, "set", "channel", "#support", "5")[2],
        shell("--team", TEAM, "set", "channel", "5")[2],
        shell("--team", TEAM, "set", "workspace", "-5")[2],
        shell("--team", TEAM)[1],  # show, with no limits set: the syntax follows
    ]
    for said in messages:
        assert "Slack offers" not in said
        assert "/usage budget" not in said
        assert "python -m bot budget --team T012ABCDEF" in said
    assert "`python -m bot budget --team T012ABCDEF set channel C012ABCDEF 50`" in messages[0]
    assert "give its channel id, such as C012ABCDEF" in messages[1]
    assert "admins" not in messages[0]


def test_an_unreachable_database_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert main(["budget", "--team", TEAM, "set", "workspace", "5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("switchboard: cannot change budgets in postgresql://")
    assert "Connection refused" in err and err.count("\n") == 1


def test_python_m_bot_budget(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    result = run_bot(
        "budget", "--team", TEAM, "set", "default-user", "2.50", "500k", "tokens",
        env={"DATABASE_URL": db_url}, cwd=tmp_path,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "Set: each member (by default) may use $2.50 and 500,000 tokens a month. It resets on "
        f"{RESETS} (UTC).\n"
    )
    assert budgets(sessions) == {("default_user", "", Decimal("2.50"), 500_000, None)}
