"""app.yaml is a valid Slack manifest, and it and the handlers agree on commands and events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness import BOT_USER, SlackAppHarness

ROOT = Path(__file__).resolve().parents[1]
# Slack's official schema: the team's shared copy when it is beside the checkout, else ours.
SCHEMA_NAME = "manifest.schema.1.0.0.json"
_SHARED_SCHEMA = ROOT.parent / "shared" / "slack" / SCHEMA_NAME
SCHEMA = _SHARED_SCHEMA if _SHARED_SCHEMA.exists() else ROOT / "tests/data/slack" / SCHEMA_NAME
# Which manifest event subscriptions each Bolt `app.event(...)` listener serves.
EVENT_LISTENERS = {
    "app_mention": {"app_mention"},
    "message": {"message.channels", "message.groups", "message.im", "message.mpim"},
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "app.yaml").read_text())


def registered(kind: str) -> set[str]:
    """Names passed to `app.<kind>("…")` anywhere in handlers/."""
    pattern = re.compile(rf'app\.{kind}\(\s*"([^"]+)"')
    return {
        name
        for path in (ROOT / "handlers").glob("*.py")
        for name in pattern.findall(path.read_text())
    }


def test_manifest_matches_slacks_schema(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_every_command_has_a_handler_and_every_handler_a_command(manifest: dict) -> None:
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == registered("command")


def test_every_event_has_a_listener_and_every_listener_a_subscription(manifest: dict) -> None:
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    listeners = registered("event")
    assert set().union(*(EVENT_LISTENERS[name] for name in listeners)) == events


def test_actions_need_interactivity(manifest: dict[str, Any]) -> None:
    if registered("action"):
        assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_the_running_app_handles_every_command_and_event_in_the_manifest(
    manifest: dict[str, Any], app: SlackAppHarness
) -> None:
    for command in manifest["features"]["slash_commands"]:
        assert app.command(command["command"], "help").status == 200, command
    for subscription in manifest["settings"]["event_subscriptions"]["bot_events"]:
        event_type, _, channel_type = subscription.partition(".")
        channel_type = {"channels": "channel", "groups": "group"}.get(channel_type, channel_type)
        event = app.message_event(f"<@{BOT_USER}> hi", channel_type=channel_type or "channel")
        assert app.event(event | {"type": event_type}).status == 200, subscription
    app.wait_idle()
    assert app.event({"type": "reaction_added", "user": "U1"}).status == 404  # Bolt: unhandled


def test_scopes_cover_what_the_bot_calls(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {"app_mentions:read", "chat:write", "commands", "im:history", "channels:history"}
    needed |= {"users:read", "files:write", "im:write", "assistant:write"}
    assert needed <= scopes
