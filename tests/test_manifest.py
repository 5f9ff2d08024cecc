"""app.yaml is a valid Slack manifest, and it and the handlers agree on commands and events."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.installs.oauth import BOT_SCOPES
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
    "app_home_opened": {"app_home_opened"},
    "app_uninstalled": {"app_uninstalled"},
    "tokens_revoked": {"tokens_revoked"},
    "file_deleted": {"file_deleted"},
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


# The bot scopes each Slack Web API call needs (docs.slack.dev/reference/methods/<method>),
# by `WebClient` method name. A call the code makes that is missing here fails the test below:
# look the method up and add it.
WEB_API_SCOPES: dict[str, set[str]] = {
    "api_test": set(),
    "auth_test": set(),
    # Called with the app-level token (xapp-, scope connections:write), not the bot token.
    "apps_connections_open": set(),
    # Since 2026-03 chat:write is enough for the status (it used to take assistant:write).
    "assistant_threads_setStatus": {"chat:write"},
    "assistant_threads_setSuggestedPrompts": {"assistant:write"},
    "assistant_threads_setTitle": {"assistant:write"},
    "chat_appendStream": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_getPermalink": set(),
    "chat_postEphemeral": {"chat:write"},
    "chat_postMessage": {"chat:write"},
    "chat_startStream": {"chat:write"},
    "chat_stopStream": {"chat:write"},
    "chat_stream": {"chat:write"},  # slack_sdk's helper over chat.*Stream
    "chat_update": {"chat:write"},
    "conversations_open": {"im:write"},  # a DM with one person
    # A thread the bot is called into, read once: the history scope of each kind of channel.
    "conversations_replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    # files.getUploadURLExternal and files.completeUploadExternal
    "files_upload_v2": {"files:write"},
    "files_info": {"files:read"},
    "reactions_add": {"reactions:write"},
    # users:read.email: users.info leaves the email out without it, and users rows keep it.
    "users_info": {"users:read", "users:read.email"},
    "views_open": set(),
    "views_publish": set(),
    "views_update": set(),
}
# Bolt's shortcuts for Web API calls, as the listeners receive them.
BOLT_SHORTCUTS = {"say": "chat_postMessage", "say_stream": "chat_startStream", "respond": None}
# The scope behind each event subscription and feature of the manifest.
EVENT_SCOPES: dict[str, str | None] = {
    "app_mention": "app_mentions:read",
    "app_home_opened": None,  # Slack's docs: no scope required
    "app_uninstalled": None,  # Slack's docs: no scope required
    "tokens_revoked": None,  # Slack's docs: no scope required
    "file_deleted": "files:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
}


def web_api_calls() -> dict[str, set[str]]:
    """`WebClient` methods called in handlers/ and bot/ (bot/slack/ too), and who calls each."""
    from slack_sdk import WebClient
    from slack_sdk.web.base_client import BaseClient

    methods = {name for name in vars(WebClient) if not name.startswith("_")} - set(dir(BaseClient))
    calls: dict[str, set[str]] = {}
    for path in [*(ROOT / "handlers").rglob("*.py"), *(ROOT / "bot").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name == "api_call" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value).replace(".", "_")
            elif name in BOLT_SHORTCUTS and isinstance(node.func, ast.Name):
                name = BOLT_SHORTCUTS[name]
            elif not isinstance(node.func, ast.Attribute) or name not in methods:
                continue
            if name is not None:
                calls.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return calls


def test_the_scan_finds_the_calls_the_bot_is_known_to_make() -> None:
    calls = web_api_calls()
    # Replies start their streams through slack_sdk's helper (`chat_stream`), not directly.
    assert {"chat_stream", "chat_stopStream", "chat_postMessage", "users_info"} <= calls.keys()
    # The adapters that write to Slack on the services' behalf live in bot/slack/.
    assert "bot/slack/profiles.py" in calls["users_info"]
    assert "bot/slack/reply.py" in calls["chat_stream"]


def test_every_web_api_call_has_its_scopes_listed() -> None:
    unlisted = {
        name: files for name, files in web_api_calls().items() if name not in WEB_API_SCOPES
    }
    assert not unlisted, (
        f"add these WebClient methods to WEB_API_SCOPES with the scopes Slack's docs give: "
        f"{unlisted}"
    )


def test_the_manifest_grants_every_scope_the_bot_needs(manifest: dict[str, Any]) -> None:
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {
        scope: f"{name}() in {', '.join(sorted(files))}"
        for name, files in web_api_calls().items()
        for scope in WEB_API_SCOPES.get(name, ())
    }
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        if (scope := EVENT_SCOPES[event]) is not None:
            needed[scope] = f"the {event} event"
    if manifest["features"].get("slash_commands"):
        needed["commands"] = "the slash commands"
    missing = {scope: why for scope, why in needed.items() if scope not in granted}
    assert not missing, f"app.yaml lacks bot scopes: {missing}"


def test_downloads_have_their_scope(manifest: dict[str, Any]) -> None:
    # Shared files are fetched over HTTP, not through a WebClient method the scan above sees.
    from bot.files.download import SCOPE

    assert SCOPE in manifest["oauth_config"]["scopes"]["bot"]


def test_the_oauth_flow_asks_for_the_manifests_bot_scopes(manifest: dict[str, Any]) -> None:
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])
    assert len(BOT_SCOPES) == len(set(BOT_SCOPES))
