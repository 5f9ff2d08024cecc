"""`python -m bot usage`: the /usage report from the database, for operators and scripts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from typing import Any, TextIO

from bot.members.directory import UserDirectory
from bot.shell.command_line import CommandError, database, one_line_errors
from bot.shell.settings import Settings
from bot.usage.figures import (
    Money,
    busiest_words,
    format_count,
    format_ms,
    format_share,
    plural,
    span_words,
    tool_figures,
)
from bot.usage.reports import UsageLine, UsageReport, UsageService, report_csv
from bot.usage.request import (
    DEFAULT_DAYS,
    MAX_DAYS,
    Period,
    UsageError,
    date_range,
    last_days,
    parse_day,
    range_problem,
)
from db import totals

TOP = 10
_EXAMPLE = "for example --since 2026-11-01 --until 2026-11-15"


class _NoProfiles:
    """The command line never asks Slack: operator reports need no profiles."""

    def fetch(self, team_id: str, slack_user_id: str) -> None:
        return None


@one_line_errors
def run_usage(settings: Settings, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Print the report in `args.format`, or rebuild the totals; 2 and a stderr line: bad input."""
    out = out or sys.stdout
    if args.rebuild_totals:
        return rebuild_totals(settings, out=out)
    period = cli_period(args, now=datetime.now(UTC))
    with database(settings, doing="read usage from", pool_size=2) as sessions:
        service = UsageService(sessions, UserDirectory(sessions, _NoProfiles()))
        try:
            report = service.report(
                period, team_id=args.team, slack_user_id=args.user, model=args.model
            )
        except UsageError as exc:
            raise CommandError(str(exc)) from None
    if args.format == "csv":
        out.write(report_csv(report))
    elif args.format == "json":
        json.dump(report_json(report), out, indent=2)
        out.write("\n")
    else:
        out.write(report_table(report))
    return 0


@one_line_errors
def rebuild_totals(settings: Settings, *, out: TextIO) -> int:
    """Recompute the running totals in one transaction and say what was written; 1 on failure."""
    started = time.perf_counter()
    with (
        database(settings, doing="rebuild the usage totals in") as sessions,
        sessions.begin() as session,
    ):
        totals.hold_back_recording(session)
        daily, monthly = totals.rebuild(session)
    elapsed = time.perf_counter() - started
    out.write(
        f"Rebuilt the usage totals from responses: {format_count(daily)} daily rows and "
        f"{format_count(monthly)} monthly rows in {elapsed:.1f} s.\n"
    )
    return 0


def cli_period(args: argparse.Namespace, *, now: datetime) -> Period:
    """The period named by --days, or --since and --until (UTC days, both included)."""
    if args.until and not args.since:
        raise CommandError(f"--until needs --since, {_EXAMPLE}.")
    if args.since:
        first = _date("--since", args.since)
        last = _date("--until", args.until) if args.until else now.astimezone(UTC).date()
        problem = range_problem(first, last)
        if problem == "reversed":
            raise CommandError(
                f"--until {last} is before --since {first}: put the earlier date in --since, "
                f"{_EXAMPLE}."
            )
        if problem == "too long":
            raise CommandError(
                f"--since {first} --until {last} spans {(last - first).days + 1} days: a report "
                f"covers at most {MAX_DAYS} days (one year), {_EXAMPLE}."
            )
        return date_range(first, last, now=now)
    days = DEFAULT_DAYS if args.days is None else args.days
    if not 1 <= days <= MAX_DAYS:
        raise CommandError(
            f"--days {days} is out of range: give 1 to {MAX_DAYS} days (one year), "
            "for example --days 30."
        )
    return last_days(days, now=now)


def _date(option: str, value: str) -> date:
    day = parse_day(value)
    if day is None:
        raise CommandError(f"{option} {value!r} is not a date: use YYYY-MM-DD, {_EXAMPLE}.")
    return day


# ----- formats -------------------------------------------------------------------------------


def report_json(report: UsageReport) -> dict[str, Any]:
    """The report as plain JSON types (cost in USD as a number; percentiles in ms)."""
    return {
        "period": {
            "label": report.period.label,
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
        },
        "team_id": report.team_id,
        "filters": report.filters,
        "total": _line_json(report.total),
        "models": [_line_json(line) for line in report.models],
        "users": [_line_json(line) for line in report.users],
        "channels": [_line_json(line) for line in report.channels],
        "days": [_line_json(line) for line in report.days],
        "tools": _tools_json(report),
    }


def _tools_json(report: UsageReport) -> list[dict[str, Any]]:
    return [
        {"tool": t.tool, "server": t.server, "calls": t.calls, "errors": t.errors,
         "p95_ms": t.p95_ms}
        for t in report.tools
    ]  # fmt: skip


def _line_json(line: UsageLine) -> dict[str, Any]:
    tally = line.tally
    ratings = {}
    if line.ratings is not None:
        cost = line.cost_per_positive
        ratings = {
            "answers_rated": line.ratings.rated,
            "answers_positive": line.ratings.positive,
            "share_positive": line.share_positive,
            "cost_per_positive_usd": None if cost is None else float(cost),
        }
    return {
        "key": line.key,
        "name": line.label,
        "requests": tally.requests,
        "errors": tally.errors,
        "tokens_prompt": tally.tokens_prompt,
        "tokens_completion": tally.tokens_completion,
        "tokens_total": tally.tokens_total,
        # Numeric(14, 8) sums fit a double exactly enough: 15 significant digits.
        "cost_usd": float(tally.cost_usd),
        "unpriced_requests": tally.unpriced,
        "median_ms": line.median_ms,
        "p95_ms": line.p95_ms,
        **ratings,
    }


def report_table(report: UsageReport) -> str:
    """The report as aligned text for a terminal."""
    money = report.money()
    total = report.total.tally
    where = f"workspace {report.team_id}" if report.team_id else "all workspaces"
    start = report.period.start.strftime("%Y-%m-%d %H:%M")
    end = report.period.end.strftime("%Y-%m-%d %H:%M")
    lines = [
        f"Usage for {where}, {report.period.label} ({start} to {end} UTC)",
    ]
    if report.filters:
        lines.append("Filters: " + ", ".join(report.filters))
    errors = plural(total.errors, "error") if total.errors else "no errors"
    cost = money(total.cost_usd)
    if total.unpriced:
        cost += f" (not counted: {plural(total.unpriced, 'answer')} from models with no price)"
    lines += [
        "",
        f"Requests         {format_count(total.requests)} ({errors})",
        f"Tokens           {format_count(total.tokens_total)} "
        f"({format_count(total.tokens_prompt)} in the prompts, "
        f"{format_count(total.tokens_completion)} in the answers)",
        f"Cost             {cost}",
        f"Completion time  median {format_ms(report.total.median_ms)}, "
        f"95% within {format_ms(report.total.p95_ms)}",
        f"Ratings          {_ratings_words(report.total, money)}",
    ]
    view = report.glance()
    if view is not None:
        measure = view.measure[0].upper() + view.measure[1:]
        lines.append(f"{measure:<17}{view.spark}  ({span_words(view)})")
        busiest = "Busiest day" if len(view.busiest) == 1 else "Busiest days"
        lines.append(f"{busiest:<17}{busiest_words(view, money)}")
    sections = (
        ("Model", report.models, len(report.models)),
        ("User", report.users, TOP),
        ("Channel", report.channels, TOP),
    )
    unpriced = bool(total.unpriced)
    for title, rows, limit in sections:
        if not rows:
            continue
        lines += ["", *_table(title, rows[:limit], money, unpriced=unpriced)]
        if len(rows) > limit:
            lines.append(f"  … and {len(rows) - limit} more (--format csv lists every row)")
    lines += _tools_table(report)
    lines += ["", "Days are UTC; --format csv or json lists every day."]
    return "\n".join(lines) + "\n"


def _tools_table(report: UsageReport) -> list[str]:
    """The MCP tools' calls, errors and p95 duration (nothing when no tool was used)."""
    if not report.tools:
        return []
    width = max(len(f"{t.tool} ({t.server})") for t in report.tools)
    return ["", "Tools", *(f"  {f'{t.tool} ({t.server})':<{width}}  {tool_figures(t)}"
                           for t in report.tools)]  # fmt: skip


def _ratings_words(line: UsageLine, money: Money) -> str:
    rated = line.rated
    if not rated:
        return "no answers rated"
    cost = line.cost_per_positive
    per_positive = "no positive answers" if cost is None else f"{money(cost)} per positive answer"
    share = format_share(line.share_positive)
    return f"{plural(rated, 'answer')} rated, {share} positive, {per_positive}"


def _table(title: str, rows: list[UsageLine], money: Money, *, unpriced: bool) -> list[str]:
    header = [title, "requests", "errors", "prompt", "completion", "tokens", "cost"]
    if unpriced:
        header.append("no price")
    rated = any(line.ratings is not None for line in rows)
    if rated:
        header += ["rated", "positive", "cost/positive"]
    body = [
        [
            _name(line),
            format_count(line.tally.requests),
            format_count(line.tally.errors),
            format_count(line.tally.tokens_prompt),
            format_count(line.tally.tokens_completion),
            format_count(line.tally.tokens_total),
            money(line.tally.cost_usd),
            *([format_count(line.tally.unpriced)] if unpriced else []),
            *(_rating_cells(line, money) if rated else []),
        ]
        for line in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in [header, *body]
    ]


def _name(line: UsageLine) -> str:
    if line.key and line.key != line.label:
        return f"{line.label} ({line.key})"
    return line.label


def _rating_cells(line: UsageLine, money: Money) -> list[str]:
    rated = line.rated
    cost = line.cost_per_positive
    return [
        format_count(rated),
        format_share(line.share_positive),
        "n/a" if cost is None else money(cost),
    ]
