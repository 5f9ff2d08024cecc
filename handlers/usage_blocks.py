"""Block Kit for /usage: a summary in fields, then models, top users, top channels and days."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.usage.reports import (
    UsageLine,
    UsageReport,
    format_count,
    format_ms,
    format_share,
    format_usd,
    tool_figures,
)
from handlers.slash_replies import Reply

TOP = 10
# Slack allows 3,000 characters in a section's text and 50 blocks in a message.
_MAX_SECTION_TEXT = 2900
_MAX_BLOCKS = 50

Block = dict[str, Any]


def report_message(report: UsageReport) -> Reply:
    """The usage report as a reply: fallback text and blocks, for the person who asked."""
    total = report.total.tally
    text = (
        f"Usage, {report.period.label}: {format_count(total.requests)} requests, "
        f"{format_count(total.tokens_total)} tokens, {format_usd(total.cost_usd)}"
    )
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Usage · {report.period.label}"},
        },
        _context(_scope(report)),
    ]
    if total.requests == 0:
        blocks.append(_section("No usage recorded in this period."))
        return Reply(text, blocks)
    blocks.append(_summary(report.total))
    blocks.append({"type": "divider"})
    blocks.append(_top("By model", report.models, lambda line: f"`{line.label}`", _model_figures))
    if not report.one_user:
        blocks.append(_top("Top users", report.users, _user))
    if not report.one_channel:
        blocks.append(_top("Top channels", report.channels, _channel))
    if report.tools:
        blocks.append(_tools(report))
    blocks.extend(_days(report.days, room=_MAX_BLOCKS - len(blocks) - 1))
    blocks.append(_context("Days are UTC. `/usage csv` sends every row to your DMs."))
    return Reply(text, blocks)


def _tools(report: UsageReport) -> Block:
    """The MCP tools the answers used: calls, errors and p95 duration each."""
    rows = [
        f"`{stats.tool}` ({stats.server})  {tool_figures(stats)}" for stats in report.tools[:TOP]
    ]
    more = len(report.tools) - TOP
    if more > 0:
        rows.append(f"… and {more} more")
    return _section(("*Tools*\n" + "\n".join(rows))[:_MAX_SECTION_TEXT])


def _scope(report: UsageReport) -> str:
    start = report.period.start.strftime("%Y-%m-%d %H:%M")
    end = report.period.end.strftime("%Y-%m-%d %H:%M")
    who = "Your own usage (workspace reports are for admins)" if report.own_only else "Workspace"
    parts = [who, *report.filters, f"{start} to {end} UTC"]
    return " · ".join(parts)


def _summary(line: UsageLine) -> Block:
    tally = line.tally
    cost = format_usd(tally.cost_usd)
    if tally.unpriced:
        cost += f"\n{format_count(tally.unpriced)} requests unpriced (not in the cost)"
    errors = "no errors" if not tally.errors else f"{format_count(tally.errors)} errors"
    fields = [
        f"*Requests*\n{format_count(tally.requests)} · {errors}",
        f"*Cost*\n{cost}",
        f"*Tokens*\n{format_count(tally.tokens_total)}\n"
        f"prompt {format_count(tally.tokens_prompt)} · "
        f"completion {format_count(tally.tokens_completion)}",
        f"*Completion time*\nmedian {format_ms(line.median_ms)} · p95 {format_ms(line.p95_ms)}",
        f"*Ratings*\n{_ratings_summary(line)}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def _ratings_summary(line: UsageLine) -> str:
    rated = line.rated
    if not rated:
        return "no answers rated (👍/👎 under each answer)"
    cost = line.cost_per_positive
    per_positive = "no 👍 answers" if cost is None else f"{format_usd(cost)} per 👍 answer"
    return (
        f"{format_count(rated)} answers rated · {format_share(line.share_positive)} 👍\n"
        f"{per_positive}"
    )


def rating_figures(line: UsageLine, *, counted: str = " rated", none: str = "not rated") -> str:
    """A line's ratings in a few characters: `12 rated · 75% 👍 · $0.0100/👍`."""
    rated = line.rated
    if not rated:
        return none
    parts = [f"{format_count(rated)}{counted}", f"{format_share(line.share_positive)} 👍"]
    cost = line.cost_per_positive
    if cost is not None:
        parts.append(f"{format_usd(cost)}/👍")
    return " · ".join(parts)


def _model_figures(line: UsageLine) -> str:
    return f"{_figures(line)} · {rating_figures(line)}"


def _figures(line: UsageLine) -> str:
    tally = line.tally
    parts = [f"{format_count(tally.requests)} req", f"{format_count(tally.tokens_total)} tok"]
    cost = format_usd(tally.cost_usd)
    if tally.unpriced == tally.requests:
        cost = "unpriced"
    elif tally.unpriced:
        cost += f" (+{format_count(tally.unpriced)} unpriced)"
    parts.append(cost)
    if tally.errors:
        parts.append(f"{format_count(tally.errors)} errors")
    return " · ".join(parts)


def _user(line: UsageLine) -> str:
    return f"<@{line.key}>" if line.key else line.label


def _channel(line: UsageLine) -> str:
    return f"<#{line.key}>" if line.key else line.label


def _top(
    title: str,
    lines: list[UsageLine],
    name: Callable[[UsageLine], str],
    figures: Callable[[UsageLine], str] = _figures,
) -> Block:
    rows = [f"{name(line)}  {figures(line)}" for line in lines[:TOP]]
    if len(lines) > TOP:
        rows.append(f"_…and {len(lines) - TOP} more in `/usage csv`_")
    return _section(f"*{title}*\n" + "\n".join(rows))


def _days(lines: list[UsageLine], *, room: int) -> list[Block]:
    rows = [
        f"`{line.key}`  {_figures(line) if line.tally.requests else 'no requests'}"
        for line in lines
    ]
    blocks: list[Block] = []
    chunk = "*By day*"
    for row in rows:
        if len(chunk) + 1 + len(row) > _MAX_SECTION_TEXT:
            blocks.append(_section(chunk))
            chunk = row
        else:
            chunk += "\n" + row
    blocks.append(_section(chunk))
    if len(blocks) > room:
        # A year of days fits easily; this only guards Slack's block limit.
        blocks = [*blocks[: room - 1], _section("_More days in `/usage csv`._")]
    return blocks


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
