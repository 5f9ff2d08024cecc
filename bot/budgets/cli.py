"""`python -m bot budget`: show, set and clear a workspace's monthly limits from a shell."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TextIO

from bot.budgets.commands import BudgetError, BudgetService
from bot.shell.command_line import CommandError, database, one_line_errors
from bot.shell.settings import Settings

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


@one_line_errors
def run_budget(settings: Settings, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Do what the words say and print the answer; 2 and one stderr line for bad input."""
    out = out or sys.stdout
    if not args.team:
        raise CommandError(
            "budget needs --team, the workspace id, for example "
            "`python -m bot budget --team T012ABCDEF show`."
        )
    with database(settings, doing="change budgets in") as sessions:
        try:
            answer = BudgetService(sessions, None).operator(args.team, list(args.words))
        except BudgetError as exc:
            raise CommandError(plain(str(exc))) from None
    out.write(plain(answer) + "\n")
    return 0


def plain(text: str) -> str:
    """Slack's markup as a terminal shows it: <#C1> as #C1, <@U1> as @U1, no bold stars."""
    return _LINK.sub(lambda match: match[1] + match[2], text).replace("*", "")
