"""app.yaml declares the agent experience (agent_view) and what the agent features need."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness import SlackAppHarness

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests/data/slack/manifest.schema.1.0.0.json"
# Which manifest event subscriptions each Bolt `app.event(...)` listener serves.
SUBSCRIPTIONS = {
    "app_home_opened": {"app_home_opened"},
    "app_mention": {"app_mention"},
    "message": {"message.channels", "message.groups", "message.im", "message.mpim"},
    "app_uninstalled": {"app_uninstalled"},
    "tokens_revoked": {"tokens_revoked"},
    "file_deleted": {"file_deleted"},
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "app.yaml").read_text())


def listeners(kind: str) -> set[str]:
    """Names passed to `app.<kind>("…")` anywhere in handlers/."""
    pattern = re.compile(rf'app\.{kind}\(\s*"([^"]+)"')
    return {
        name
        for path in (ROOT / "handlers").glob("*.py")
        for name in pattern.findall(path.read_text())
    }


def test_agent_view_replaces_the_legacy_assistant_view(manifest: dict[str, Any]) -> None:
    features = manifest["features"]
    assert "assistant_view" not in features
    view = features["agent_view"]
    definitions = json.loads(SCHEMA.read_text())["definitions"]
    jsonschema.validate(view, definitions["app-manifests.v1.features.agent_view"])
    assert 0 < len(view["agent_description"]) <= 300
    assert "/model" in view["agent_description"] and "[NAME]" in view["agent_description"]
    assert 1 <= len(view["suggested_prompts"]) <= 4
    for prompt in view["suggested_prompts"]:
        assert set(prompt) == {"title", "message"}
        assert prompt["title"].strip() and prompt["message"].strip()


def test_plain_dms_and_the_home_tab_stay_open(manifest: dict[str, Any]) -> None:
    app_home = manifest["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is True
    assert app_home["messages_tab_read_only_enabled"] is False
    assert app_home["home_tab_enabled"] is True


def test_every_event_has_a_listener_and_every_listener_a_subscription(
    manifest: dict[str, Any],
) -> None:
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_home_opened", "app_mention", "message.im", "message.channels"} <= events
    assert set().union(*(SUBSCRIPTIONS[name] for name in listeners("event"))) == events


def test_the_agent_features_have_their_scopes_and_interactivity(
    manifest: dict[str, Any],
) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert "assistant:write" in scopes  # suggested prompts and the thread status
    # The feedback buttons and the Home tab's menu arrive as block_actions.
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_the_running_app_answers_app_home_opened_on_either_tab(app: SlackAppHarness) -> None:
    for tab in ("messages", "home", None):
        event = {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": tab}
        assert app.event(event).status == 200, tab
    app.wait_idle()
