"""Words and Block Kit for /model: the status with its menu, confirmations, notes, help."""

from __future__ import annotations

from typing import Any

from bot.model_choice.chain import LEVEL_LABELS
from bot.model_choice.commands import MAX_COMMAND_PROMPT, Changed, Status
from handlers.slash_replies import Reply

MENU_BLOCK = "model_menu"
SELECT_ACTION = "model_menu_select"
SET_HERE_ACTION = "model_set_here"
SET_NEXT_ACTION = "model_set_next"

# Slack's limits for a static_select: 100 options, 75 characters of text, 150 of value.
_MAX_OPTIONS = 100
_MAX_OPTION_TEXT = 75
_MAX_OPTION_VALUE = 150

HELP = f"""\
*/model* chooses the model that answers. The first that is set wins: an override on the \
message, the conversation's model, this channel's default (in a DM with me: your own), then \
the workspace's default model.
• `/model` — what answers here and why, with a menu to choose from
• `/model NAME` — set this channel's default (in a DM with me: your default there); new \
conversations use it
• `/model NAME PROMPT…` — ask NAME once: I post the prompt here in your name and answer in \
its thread (at most {MAX_COMMAND_PROMPT:,} characters)
• `/model reset` — clear this channel's default (in a DM with me: yours)
• `/model workspace NAME` / `/model workspace reset` — set or clear the workspace default \
(admins)
• `/model admins-only on|off` — whether only admins may change channel defaults (admins)
• `/model tools on|off` — whether the model may look things up with tools in this channel \
(admins)
• `/model help` — this text
In a message: `[NAME] question` uses NAME for that message only. In a thread: `model NAME` \
changes the model for the rest of that thread; as a new message in a DM with me, it sets your \
DM model."""


def model_label(model: str, name: str | None = None) -> str:
    """`alias` (`model`) when an alias was used, else `model`."""
    if name and name != model:
        return f"`{name}` (`{model}`)"
    return f"`{model}`"


def status_message(status: Status) -> Reply:
    """`/model` with nothing after it: fallback text and blocks, for the person who asked."""
    headline = f"Here, *`{status.here.model}`* answers — {status.here.reason}."
    if status.pending:
        headline = (
            f"Your next message here goes to *`{status.pending}`* (you chose it for one "
            f"message). After that: `{status.here.model}` — {status.here.reason}."
        )
    # Members never read a setting's name: the operator's DEFAULT_MODEL is, to them, the
    # workspace's default until an admin chooses another.
    workspace = (
        f"`{status.workspace_default}` (chosen by an admin)"
        if status.workspace_default
        else f"`{status.setting_default}`"
    )
    who = "only admins" if status.admins_only else "anyone"
    facts = [
        f"Workspace default: {workspace}",
        f"Channel defaults can be changed by {who}",
    ]
    if status.tools is not None:
        facts.append("Tools are on here" if status.tools else "Tools are off in this channel")
    blocks: list[dict[str, Any]] = [
        _section(headline),
        {"type": "context", "elements": [_mrkdwn(" · ".join(facts))]},
    ]
    menu = _menu(status)
    if menu is not None:
        blocks.append(menu)
    notes = []
    if status.catalogue_error:
        notes.append(f":warning: {status.catalogue_error}")
    elif len(status.entries) > _MAX_OPTIONS:
        notes.append(f"The menu shows the first {_MAX_OPTIONS}; `/model NAME` takes any of them.")
    if not status.may_set_here:
        notes.append("Only admins can change this channel's default.")
    notes.append("`/model help` shows everything /model can do.")
    blocks.append({"type": "context", "elements": [_mrkdwn(" ".join(notes))]})
    return Reply(headline, blocks)


def changed_message(changed: Changed) -> str:
    """The confirmation only the caller sees."""
    if changed.scope == "tools":
        if changed.tools:
            return "Done: the model may use tools in this channel again."
        return "Done: the model no longer uses tools in this channel."
    if changed.scope == "admins_only":
        if changed.admins_only:
            return "Done: from now on only admins can change channel defaults."
        return "Done: everyone can change channel defaults again."
    if changed.scope == "next":
        return (
            f"Your next message here goes to {model_label(changed.model or '', changed.name)}. "
            "After that, the usual model answers again."
        )
    where = {
        "channel": "this channel's default",
        "dm": "your default for DMs with me",
        "workspace": "the workspace's default model",
    }[changed.scope]
    if changed.model is not None:
        return (
            f"Done: {where} is now {model_label(changed.model, changed.name)}. "
            "New conversations use it; threads already going keep their model."
        )
    if not changed.existed:
        return f"Nothing to clear: {where} was not set."
    assert changed.now is not None
    return (
        f"Cleared {where}. New conversations use `{changed.now.model}` "
        f"({LEVEL_LABELS[changed.now.level]})."
    )


def announcement(changed: Changed, user_id: str) -> str | None:
    """The public note in the channel, when a channel's default (or its tools) changed."""
    if changed.scope == "tools":
        state = "on" if changed.tools else "off"
        return f"<@{user_id}> turned tools {state} in this channel."
    if changed.scope != "channel" or not changed.existed:
        return None
    if changed.model is not None:
        return (
            f"<@{user_id}> set this channel's model to {model_label(changed.model, changed.name)}."
            " New conversations here use it."
        )
    assert changed.now is not None
    return (
        f"<@{user_id}> cleared this channel's model. New conversations here use "
        f"`{changed.now.model}` ({LEVEL_LABELS[changed.now.level]})."
    )


def asked_message(user_id: str, model: str, name: str, prompt: str) -> str:
    """The prompt of `/model NAME PROMPT`, posted in the channel in the caller's name."""
    quoted = "\n".join(f"> {line}" for line in escape(prompt).splitlines() or [""])
    return f"<@{user_id}> asked {model_label(model, name)}:\n{quoted}"


def escape(text: str) -> str:
    """Slack's escaping, so a prompt cannot turn into `<!channel>` or a link when reposted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _menu(status: Status) -> dict[str, Any] | None:
    options = [
        {
            "text": {"type": "plain_text", "text": _option_text(alias, model)},
            "value": alias,
        }
        for alias, model in status.entries.items()
        if len(alias) <= _MAX_OPTION_VALUE
    ][:_MAX_OPTIONS]
    if not options:
        return None
    elements: list[dict[str, Any]] = [
        {
            "type": "static_select",
            "action_id": SELECT_ACTION,
            "placeholder": {"type": "plain_text", "text": "Choose a model"},
            "options": options,
        }
    ]
    if status.may_set_here:
        here = "Use in my DMs" if status.is_dm else "Use in this channel"
        elements.append(_button(here, SET_HERE_ACTION, style="primary"))
    elements.append(_button("Use for my next message", SET_NEXT_ACTION))
    return {"type": "actions", "block_id": MENU_BLOCK, "elements": elements}


def _option_text(alias: str, model: str) -> str:
    text = alias if alias == model else f"{alias} → {model}"
    return text if len(text) <= _MAX_OPTION_TEXT else text[: _MAX_OPTION_TEXT - 1] + "…"


def _button(text: str, action_id: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": action_id,
    }
    if style:
        button["style"] = style
    return button


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}
