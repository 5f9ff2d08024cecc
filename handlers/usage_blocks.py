"""Block Kit for /usage: a summary in fields, the period on one line, and the rows of figures
(by model, member and channel) in one `table` block.

Slack draws a `table` block in messages (an ephemeral reply is one), at most one per message,
appended at its bottom: more than one is refused (`invalid_attachments`,
`only_one_table_allowed`). So the three lists share one table, each under a header row of
its own. At most 100 rows of 20 cells, and 10,000 characters in all its cells
(docs.slack.dev/reference/block-kit/blocks/table-block).
"""

from __future__ import annotations

from typing import Any

from bot.usage.figures import (
    Money,
    busiest_words,
    format_ms,
    format_share,
    plural,
    span_words,
    tool_figures,
)
from bot.usage.reports import DMS, UsageLine, UsageReport
from db.totals import Tally
from handlers.slash_replies import Reply

TOP = 10
MAX_TABLE_ROWS = 100
MAX_TABLE_CELLS = 20
MAX_TABLE_TEXT = 10_000
_MAX_NAME = 60
# Slack's limit for a section's text.
MAX_SECTION_TEXT = 3000

Block = dict[str, Any]
Cell = dict[str, Any]


def report_message(report: UsageReport) -> Reply:
    """The usage report as a reply: fallback text and blocks, for the person who asked."""
    money = report.money()
    total = report.total.tally
    text = (
        f"Usage, {report.period.label}: {plural(total.requests, 'request')}, "
        f"{plural(total.tokens_total, 'token')}, {money(total.cost_usd)}"
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
    blocks.append(_summary(report, money))
    line = glance_text(report, money)
    if line:
        blocks.append(_section(line))
    if not report.own_only:
        ratings = _ratings_by_model(report, money)
        if ratings:
            blocks.append(_section(ratings))
        if report.tools:
            blocks.append(_tools(report))
    blocks.append(_context("Days are UTC. `/usage csv` sends every row to your DMs."))
    # Last: Slack draws a table at the bottom of the message wherever it is in the list.
    blocks.append(figures_table(report, money))
    return Reply(text, blocks)


def _tools(report: UsageReport) -> Block:
    """The MCP tools the answers used: calls, errors and p95 duration each."""
    rows = [
        f"`{stats.tool}` ({stats.server})  {tool_figures(stats)}" for stats in report.tools[:TOP]
    ]
    more = len(report.tools) - TOP
    if more > 0:
        rows.append(f"… and {more} more")
    return _section(("*Tools*\n" + "\n".join(rows))[:MAX_SECTION_TEXT])


def _scope(report: UsageReport) -> str:
    start = report.period.start.strftime("%Y-%m-%d %H:%M")
    end = report.period.end.strftime("%Y-%m-%d %H:%M")
    who = "Your own usage (workspace reports are for admins)" if report.own_only else "Workspace"
    return " · ".join([who, *report.filters, f"{start} to {end} UTC"])


def cost_words(tally: Tally, money: Money) -> str:
    """The cost, and how many answers it leaves out for want of a price."""
    cost = money(tally.cost_usd)
    if tally.unpriced:
        noun = plural(tally.unpriced, "answer")
        cost += f"\nnot counted: {noun} from models with no price"
    return cost


def requests_words(tally: Tally) -> str:
    """`30 · 1 error`, `12 · no errors`."""
    errors = plural(tally.errors, "error") if tally.errors else "no errors"
    return f"{tally.requests:,} · {errors}"


def _summary(report: UsageReport, money: Money) -> Block:
    line, tally = report.total, report.total.tally
    fields = [
        f"*Requests*\n{requests_words(tally)}",
        f"*Cost*\n{cost_words(tally, money)}",
        f"*Tokens*\n{tally.tokens_total:,}\n"
        f"{tally.tokens_prompt:,} in the prompts · {tally.tokens_completion:,} in the answers",
        f"*Ratings*\n{ratings_words(line, money, admin=not report.own_only)}",
    ]
    if not report.own_only:
        fields.insert(
            3,
            f"*Completion time*\nmedian {format_ms(line.median_ms)} · "
            f"95% within {format_ms(line.p95_ms)}",
        )
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def ratings_words(line: UsageLine, money: Money, *, admin: bool) -> str:
    """`3 answers rated · 67% 👍`, and for admins what a 👍 answer cost."""
    if not line.rated:
        return "no answers rated yet (👍/👎 under each answer)"
    words = f"{plural(line.rated, 'answer')} rated · {format_share(line.share_positive)} 👍"
    cost = line.cost_per_positive
    if admin and cost is not None:
        words += f"\n{money(cost)} per 👍 answer"
    return words


def _ratings_by_model(report: UsageReport, money: Money) -> str | None:
    rated = [line for line in report.models if line.rated]
    if not rated:
        return None
    rows = [
        f"`{line.label}`  {ratings_words(line, money, admin=True).replace(chr(10), ' · ')}"
        for line in rated[:TOP]
    ]
    return "*Ratings by model*\n" + "\n".join(rows)


def glance_text(report: UsageReport, money: Money) -> str | None:
    """`*Daily cost*, Nov 9 to Dec 8`, its bars on a line of their own, and the busiest
    days; None for an empty period."""
    view = report.glance()
    if view is None:
        return None
    measure = view.measure[0].upper() + view.measure[1:]
    busiest = "Busiest day" if len(view.busiest) == 1 else "Busiest days"
    return f"*{measure}*, {span_words(view)}\n{view.spark}\n{busiest}: {busiest_words(view, money)}"


# ----- the table ---------------------------------------------------------------------------


def figures_table(report: UsageReport, money: Money) -> Block:
    """By model, by member and by channel in one `table` block, each group under its header."""
    total = report.total.tally
    by_cost = bool(total.cost_usd)
    with_errors = bool(total.errors)
    groups: list[tuple[str, list[UsageLine], Any]] = [("By model", report.models, _model_cell)]
    if not report.one_user and not report.own_only:
        groups.append(("By member", report.users, _member_cell))
    if not report.one_channel:
        groups.append(("By channel", report.channels, _channel_cell))
    rows: list[list[Cell]] = []
    for title, lines, name in groups:
        header = [title, "Requests", *(["Errors"] if with_errors else []), "Tokens", "Cost"]
        header.append("Share of cost" if by_cost else "Share of requests")
        rows.append([_bold(word) for word in header])
        shown = lines[:TOP]
        for line in shown:
            rows.append([name(line), *_figure_cells(line.tally, total, money, with_errors)])
        rest = lines[TOP:]
        if rest:
            others = Tally.summed(line.tally for line in rest)
            label = f"{plural(len(rest), 'other')} (all in /usage csv)"
            rows.append([_raw(label), *_figure_cells(others, total, money, with_errors)])
    columns = len(rows[0])
    return {
        "type": "table",
        "column_settings": [{"is_wrapped": True}] + [{"align": "right"}] * (columns - 1),
        "rows": rows[:MAX_TABLE_ROWS],
    }


def _figure_cells(tally: Tally, total: Tally, money: Money, with_errors: bool) -> list[Cell]:
    cost = money(tally.cost_usd)
    if tally.unpriced == tally.requests:
        cost = "no price"
    elif tally.unpriced:
        cost += f" + {tally.unpriced:,} with no price"
    if total.cost_usd:
        share = float(tally.cost_usd / total.cost_usd)
    else:
        share = tally.requests / total.requests if total.requests else 0.0
    cells = [f"{tally.requests:,}"]
    if with_errors:
        cells.append(f"{tally.errors:,}")
    cells += [f"{tally.tokens_total:,}", cost, format_share(share)]
    return [_raw(cell) for cell in cells]


def _model_cell(line: UsageLine) -> Cell:
    return _raw(line.label)


def _member_cell(line: UsageLine) -> Cell:
    if not line.key:
        return _raw("deleted member")
    return _rich({"type": "user", "user_id": line.key})


def _channel_cell(line: UsageLine) -> Cell:
    return channel_cell(line.key)


def channel_cell(key: str) -> Cell:
    """A channel as a link, every DM together as "DMs", and no channel as such."""
    if key == DMS:
        return _raw("DMs")
    if key[:1] in ("C", "G"):
        return _rich({"type": "channel", "channel_id": key})
    return _raw("no channel")


def _raw(text: str) -> Cell:
    clipped = text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 1] + "…"
    return {"type": "raw_text", "text": clipped or "-"}


def _bold(text: str) -> Cell:
    return _rich({"type": "text", "text": text, "style": {"bold": True}})


def _rich(element: dict[str, Any]) -> Cell:
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [element]}],
    }


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
