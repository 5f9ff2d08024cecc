"""`python -m bot purge`: remove conversation content older than a cut-off, keep accounting."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from typing import TextIO

from bot.conversations.retention import BATCH_SIZE, RetentionService
from bot.shell.command_line import CommandError, database, one_line_errors
from bot.shell.settings import Settings

_AGE = re.compile(r"([0-9]{1,6})([dh])")
_UNITS = {"d": "days", "h": "hours"}


class BadAge(ValueError):
    """`--older-than` is not a positive number of days or hours."""


def parse_age(text: str) -> timedelta:
    """`90d` or `36h` as a timedelta; BadAge for anything else, zero and negatives included."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0 or int(match[1]) > 36_500 * 24:
        raise BadAge(
            f"--older-than must be a positive number of days or hours such as 90d or 36h, "
            f"not {text!r}."
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `purge`."""
    parser.add_argument("--older-than", metavar="AGE", help="age such as 90d or 36h (required)")
    parser.add_argument("--team", help="workspace (team) id; default: every workspace")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be removed, remove nothing"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"rows per transaction (default {BATCH_SIZE:,})",
    )


@one_line_errors
def run_purge(settings: Settings, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Purge (or count, with --dry-run) and print one line; 2 and one stderr line for bad input."""
    out = out or sys.stdout
    if args.older_than is None:
        raise CommandError("purge needs --older-than, for example --older-than 90d.")
    try:
        age = parse_age(args.older_than)
    except BadAge as exc:
        raise CommandError(str(exc)) from None
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, not {args.batch_size}.")
    with database(settings, doing="purge", pool_size=2) as sessions:
        service = RetentionService(sessions, batch_size=args.batch_size)
        purged = service.purge(age, team_id=args.team, dry_run=args.dry_run)
    verb = "Would remove" if purged.dry_run else "Removed"
    scope = f" in workspace {args.team}" if args.team else ""
    out.write(
        f"{verb} {purged.messages} messages and {purged.conversations} conversations{scope} "
        f"older than {purged.cutoff.isoformat(timespec='seconds')}; every responses row is kept.\n"
    )
    return 0
