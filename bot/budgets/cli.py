"""`python -m bot budget`: show, set and clear a workspace's monthly limits from a shell."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.budgets.commands import BudgetError, BudgetService
from bot.shell.settings import Settings
from db.engine import failure_line, make_engine, make_sessionmaker

_LINK = re.compile(r"<([@#])([A-Z0-9]+)(?:\|[^>]*)?>")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `budget`."""
    parser.add_argument("--team", help="workspace (team) id, for example T012ABCDEF (required)")
    parser.add_argument(
        "words",
        nargs="*",
        metavar="ACTION",
        help="show (default); set workspace 500 | set channel C0123 50 | set user U0123 20 | "
        "set default-user 10 [2M tokens]; clear workspace | clear channel C0123 | …",
    )


def run_budget(settings: Settings, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Do what the words say and print the answer; 2 and one stderr line for bad input."""
    out = out or sys.stdout
    if not args.team:
        print(
            "switchboard: budget needs --team, the workspace id, for example "
            "`python -m bot budget --team T012ABCDEF show`.",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        service = BudgetService(make_sessionmaker(engine), None)
        answer = service.operator(args.team, list(args.words))
    except BudgetError as exc:
        print(f"switchboard: {plain(str(exc))}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(failure_line("change budgets in", settings.database_url, exc), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    out.write(plain(answer) + "\n")
    return 0


def plain(text: str) -> str:
    """Slack's markup as a terminal shows it: <#C1> as #C1, <@U1> as @U1, no bold stars."""
    return _LINK.sub(lambda match: match[1] + match[2], text).replace("*", "")
