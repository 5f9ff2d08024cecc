"""Block Kit for the Home tab: the DM model with its menu, own usage, the workspace (admins).

Slack documents the `table` block for messages only, not for views: the Home tab lists its
top models, members and channels in sections, each row with a bar of its share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.home.service import Home
from bot.usage.figures import Money, bar, format_share, plural, tool_figures
from bot.usage.reports import DMS, UsageLine, UsageReport
from db.totals import Tally
from handlers.usage_blocks import cost_words, glance_text, ratings_words, requests_words

HOME_MODEL_ACTION = "home_dm_model"
HOME_MODEL_BLOCK = "home_dm_model"
TOP = 5
# Slack's limits: 100 blocks in a Home tab view, 3,000 characters of section text, and for a
# static_select 100 options of at most 75 characters of text and 150 of value.
MAX_BLOCKS = 100
MAX_SECTION_TEXT = 3000
_MAX_OPTIONS = 100
_MAX_OPTION_TEXT = 75
_MAX_OPTION_VALUE = 150

Block = dict[str, Any]


def home_view(home: Home, *, notice: str | None = None) -> dict[str, Any]:
    """The `views.publish` view of one person's Home tab; `notice` goes on top (a change made)."""
    blocks: list[Block] = [_header("Switchboard")]
    if notice:
        blocks.append(_context(notice))
    blocks += _model_blocks(home)
    # One way of writing money for the whole tab, so that every part adds up to its total.
    reports = [home.mine] + ([home.workspace] if home.workspace is not None else [])
    money = Money.for_values(amount for report in reports for amount in report.money_values())
    blocks += [{"type": "divider"}, _header(f"Your usage · {home.period.label}")]
    blocks.append(_usage_fields(home.mine.total, money, votes=home.votes))
    blocks += _glance(home.mine, money)
    if home.workspace is not None:
        blocks += [{"type": "divider"}, _header(f"Workspace · {home.period.label}")]
        blocks += _workspace_blocks(home.workspace, money)
    blocks.append(_context("Months are UTC. `/usage` shows any period, `/usage csv` every row."))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def _model_blocks(home: Home) -> list[Block]:
    choice = home.dm_model
    text = f"In your DMs with me, *`{choice.model}`* answers — {choice.reason}."
    section: Block = _section(text)
    section["block_id"] = HOME_MODEL_BLOCK
    menu = _menu(home)
    if menu is not None:
        section["accessory"] = menu
    blocks = [section]
    notes = []
    if home.catalogue_error:
        notes.append(f":warning: {home.catalogue_error}")
    elif len(home.choices) > _MAX_OPTIONS:
        notes.append(f"The menu shows the first {_MAX_OPTIONS}; `/model NAME` takes any of them.")
    if home.choices:
        listed = ", ".join(f"`{name}`" for name in home.choices)
        blocks.append(_section(_clip(f"*Models you can choose:* {listed}")))
    notes.append(
        "A DM to me saying just `model NAME` sets it too. Elsewhere: `/model` in a channel shows "
        "and sets its model; start a message with `[NAME]` to ask NAME once."
    )
    blocks.append(_context(" ".join(notes)))
    return blocks


def _menu(home: Home) -> Block | None:
    options: list[Block] = [
        {"text": {"type": "plain_text", "text": _option_text(name, model)}, "value": name}
        for name, model in home.choices.items()
        if len(name) <= _MAX_OPTION_VALUE
    ][:_MAX_OPTIONS]
    if not options:
        return None
    menu: Block = {
        "type": "static_select",
        "action_id": HOME_MODEL_ACTION,
        "placeholder": {"type": "plain_text", "text": "Choose your DM model"},
        "options": options,
    }
    current = [o for o in options if home.choices.get(o["value"]) == home.dm_model.model]
    if current and home.dm_model.level == "dm":
        menu["initial_option"] = current[0]
    return menu


def _usage_fields(line: UsageLine, money: Money, *, votes: dict[str, int] | None = None) -> Block:
    tally = line.tally
    fields = [
        f"*Requests*\n{requests_words(tally)}",
        f"*Tokens*\n{tally.tokens_total:,}",
        f"*Cost*\n{cost_words(tally, money)}",
        f"*Answers rated*\n{ratings_words(line, money, admin=False)}",
    ]
    if votes is not None:
        up, down = votes.get("up", 0), votes.get("down", 0)
        fields.append(f"*Your votes*\n{up:,} 👍 · {down:,} 👎")
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def _glance(report: UsageReport, money: Money) -> list[Block]:
    text = glance_text(report, money)
    return [_section(text)] if text else []


def _workspace_blocks(report: UsageReport, money: Money) -> list[Block]:
    blocks = [_usage_fields(report.total, money), *_glance(report, money)]
    if not report.total.tally.requests:
        return blocks
    total = report.total.tally
    blocks.append(_top("Top models", report.models, total, money, lambda line: f"`{line.label}`"))
    blocks.append(_top("Top members", report.users, total, money, _member))
    blocks.append(_top("Top channels", report.channels, total, money, _channel))
    blocks.extend(_tools(report))
    return blocks


def _tools(report: UsageReport) -> list[Block]:
    """The MCP tools the workspace's answers used this month (none: no block)."""
    rows = [f"`{t.tool}` ({t.server})  {tool_figures(t)}" for t in report.tools[:TOP]]
    return [_section(_clip("*Tools*\n" + "\n".join(rows)))] if rows else []


def _top(
    title: str,
    lines: list[UsageLine],
    total: Tally,
    money: Money,
    name: Callable[[UsageLine], str],
) -> Block:
    """Up to TOP lines, each with a bar of its share: of the cost, or of the requests when
    nothing was priced."""
    by_cost = bool(total.cost_usd)
    rows = []
    for line in lines[:TOP]:
        tally = line.tally
        if by_cost:
            share = float(tally.cost_usd / total.cost_usd)
            of = "of the cost"
        else:
            share = tally.requests / total.requests if total.requests else 0.0
            of = "of the requests"
        cost = "no price" if tally.unpriced == tally.requests else money(tally.cost_usd)
        parts = [plural(tally.requests, "request"), cost]
        if line.ratings is not None and line.rated:
            parts.append(f"{format_share(line.share_positive)} 👍 of {line.rated:,} rated")
        rows.append(f"{name(line)}\n{bar(share)} {format_share(share)} {of} · " + " · ".join(parts))
    more = len(lines) - TOP
    if more > 0:
        rows.append(f"_…and {plural(more, 'more', 'more')} in `/usage csv`_")
    return _section(_clip(f"*{title}*\n" + "\n".join(rows)))


def _member(line: UsageLine) -> str:
    return f"<@{line.key}>" if line.key else "deleted member"


def _channel(line: UsageLine) -> str:
    if line.key == DMS:
        return "DMs"
    return f"<#{line.key}>" if line.key[:1] in ("C", "G") else "no channel"


def _option_text(name: str, model: str) -> str:
    text = name if name == model else f"{name} → {model}"
    return text if len(text) <= _MAX_OPTION_TEXT else text[: _MAX_OPTION_TEXT - 1] + "…"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SECTION_TEXT else text[: MAX_SECTION_TEXT - 1] + "…"


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}
