"""Block Kit for the Home tab: the DM model with its menu, own usage, the workspace (admins)."""

from __future__ import annotations

from typing import Any

from bot.home.service import Home
from bot.usage.reports import UsageLine, UsageReport, format_count, format_usd, tool_figures
from handlers.usage_blocks import rating_figures

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
    blocks += [{"type": "divider"}, _header(f"Your usage · {home.period.label}")]
    blocks.append(_usage_fields(home.mine.total, votes=home.votes))
    if home.workspace is not None:
        blocks += [{"type": "divider"}, _header(f"Workspace · {home.period.label}")]
        blocks += _workspace_blocks(home.workspace)
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


def _usage_fields(line: UsageLine, *, votes: dict[str, int] | None = None) -> Block:
    tally = line.tally
    cost = format_usd(tally.cost_usd)
    if tally.unpriced:
        cost += f" (+{format_count(tally.unpriced)} unpriced)"
    fields = [
        f"*Requests*\n{format_count(tally.requests)}",
        f"*Tokens*\n{format_count(tally.tokens_total)}",
        f"*Cost*\n{cost}",
        f"*Answers rated*\n{rating_figures(line, counted='', none='none yet')}",
    ]
    if votes is not None:
        up, down = votes.get("up", 0), votes.get("down", 0)
        fields.append(f"*Your votes*\n{format_count(up)} 👍 · {format_count(down)} 👎")
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def _ratings(line: UsageLine) -> str:
    return rating_figures(line, counted="", none="none yet")


def _workspace_blocks(report: UsageReport) -> list[Block]:
    blocks = [_usage_fields(report.total)]
    if not report.total.tally.requests:
        return blocks
    models = [
        f"`{line.label}`  {format_count(line.tally.requests)} req · "
        f"{format_usd(line.tally.cost_usd)} · {rating_figures(line, counted='', none='none yet')}"
        for line in report.models[:TOP]
    ]
    blocks.append(_section(_clip("*Top models*\n" + "\n".join(models))))
    users = [f"<@{line.key}>" if line.key else line.label for line in report.users[:TOP]]
    user_rows = [
        f"{who}  {format_count(line.tally.requests)} req · {format_usd(line.tally.cost_usd)}"
        for who, line in zip(users, report.users[:TOP], strict=True)
    ]
    blocks.append(_section(_clip("*Top users*\n" + "\n".join(user_rows))))
    blocks.extend(_tools(report))
    blocks.append(_section(_daily(report.days)))
    return blocks


def _tools(report: UsageReport) -> list[Block]:
    """The MCP tools the workspace's answers used this month (none: no block)."""
    rows = [f"`{t.tool}` ({t.server})  {tool_figures(t)}" for t in report.tools[:TOP]]
    return [_section(_clip("*Tools*\n" + "\n".join(rows)))] if rows else []


def _daily(days: list[UsageLine]) -> str:
    """One line a day in a code block: a compact table that keeps its columns."""
    rows = [("day", "req", "tokens", "cost")] + [
        (
            line.key[5:],  # MM-DD: the month is in the header
            format_count(line.tally.requests),
            format_count(line.tally.tokens_total),
            format_usd(line.tally.cost_usd),
        )
        for line in days
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in rows
    ]
    text = "*By day (UTC)*\n```\n" + "\n".join(lines) + "\n```"
    if len(text) > MAX_SECTION_TEXT:
        # 31 days fit easily; this only guards Slack's limit, keeping the newest days.
        room = MAX_SECTION_TEXT - len("*By day (UTC)*\n```\n\n```") - 50
        kept: list[str] = []
        for line in reversed(lines[1:]):
            if sum(len(k) + 1 for k in kept) + len(line) + len(lines[0]) + 2 > room:
                break
            kept.insert(0, line)
        text = "*By day (UTC)*\n```\n" + "\n".join([lines[0], *kept]) + "\n```"
    return text


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
