"""The Home tab end to end: signed app_home_opened and menu clicks, views.publish on the fake."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Feedback, ModelDefault, Response
from handlers.home_blocks import HOME_MODEL_ACTION
from tests.blockkit_dump import dump
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.handlers.member_words import settings_named
from tests.harness import TEAM, SlackAppHarness

ADMIN, MEMBER = "U0009", "U0001"
ALIASES = (("fast", "gpt-4o-mini"), ("smart", "gpt-4o"), ("local-llama", "llama3"))


@pytest.fixture
def app(make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI) -> SlackAppHarness:
    """The app with aliases in ALLOWED_MODELS and one admin (by Slack's own flag)."""
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER, name="ada")
    return make_app(allowed_models=ALIASES)


def open_home(app: SlackAppHarness, user: str = MEMBER) -> dict[str, Any]:
    """Open the Home tab as `user`; the view the app published for them."""
    before = len(app.slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"}
    assert app.event(event).status == 200
    app.wait_idle()
    [call] = app.slack.calls_to("views.publish")[before:]
    assert call.args["user_id"] == user
    # Slack took it: the fake refuses Block Kit as Slack does (tests/fakes/block_kit.py).
    assert call.response["ok"], app.slack.refused_blocks()
    dump(f"home-{user}", {"view": call.arg("view")})
    return call.arg("view")


def texts(view: dict[str, Any]) -> str:
    """Every piece of text in the view, one per line."""
    found = []
    for block in view["blocks"]:
        for part in [block.get("text"), *(block.get("fields") or []), *block.get("elements", [])]:
            if isinstance(part, dict) and "text" in part:
                found.append(part["text"])
    return "\n".join(found)


def view_sections(view: dict[str, Any]) -> list[str]:
    """The text of each section of the view."""
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "section" and "text" in b]


def menu(view: dict[str, Any]) -> dict[str, Any]:
    [accessory] = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    return accessory


def check_view_limits(view: dict[str, Any]) -> None:
    """What Slack would refuse in a Home tab view."""
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len((block.get("text") or {}).get("text", "")) <= 3000
            assert len(block.get("fields") or []) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields") or [])
            accessory = block.get("accessory")
            if accessory and accessory["type"] == "static_select":
                assert 1 <= len(accessory["options"]) <= 100
                for option in accessory["options"]:
                    assert len(option["text"]["text"]) <= 75
                    assert len(option["value"]) <= 150
        if block["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in block["elements"])


def answer_and_rate(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session], *, user: str,
    rating: str, name: str = "fast",
) -> None:  # fmt: skip
    """Ask model `name` as `user`, and store their vote on the answer."""
    model.enqueue(FakeReply(text="An answer."))
    app.mention(f"[{name}] a question", user=user)
    app.wait_idle()
    with sessions.begin() as session:
        response_id = session.scalars(select(Response.id).order_by(Response.id.desc())).first()
        session.add(
            Feedback(response_id=response_id, team_id=TEAM, slack_user_id=user, rating=rating)
        )


def test_a_member_sees_their_dm_model_choices_and_usage(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    answer_and_rate(app, model, sessions, user=MEMBER, rating="up")
    answer_and_rate(app, model, sessions, user=ADMIN, rating="down", name="smart")
    view = open_home(app)
    check_view_limits(view)
    shown = texts(view)
    assert "In your DMs with me, *`gpt-4o-mini`* answers — the workspace's default model." in shown
    assert settings_named(view) == []
    dump("home_member", view)
    assert [o["value"] for o in menu(view)["options"]] == ["fast", "smart", "local-llama"]
    assert "initial_option" not in menu(view)  # nothing chosen for DMs yet
    assert "`fast`, `smart`, `local-llama`" in shown
    # Their own usage this month, their answer's rating and their own vote; not the admin's.
    assert "*Requests*\n1 · no errors" in shown
    assert "*Answers rated*\n1 answer rated · 100% 👍" in shown
    assert "*Your votes*\n1 👍 · 0 👎" in shown
    assert "*Daily cost*, " in shown and "\nBusiest day: " in shown
    assert "Workspace" not in shown and "Top members" not in shown
    assert "per 👍" not in shown and "95%" not in shown


def test_an_admin_also_sees_the_workspace(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    answer_and_rate(app, model, sessions, user=MEMBER, rating="up")
    answer_and_rate(app, model, sessions, user=MEMBER, rating="down")
    answer_and_rate(app, model, sessions, user=ADMIN, rating="down", name="smart")
    view = open_home(app, ADMIN)
    check_view_limits(view)
    shown = texts(view)
    assert "*Requests*\n1 · no errors" in shown  # their own first
    assert "Workspace · this month" in shown
    assert "*Requests*\n3 · no errors" in shown
    # Each model with a bar of its share and labelled figures, not bare numbers.
    [models] = [t for t in view_sections(view) if t.startswith("*Top models*")]
    lines = models.split("\n")
    # By cost: the one gpt-4o answer cost more than the two gpt-4o-mini ones.
    assert lines[1] == "`gpt-4o`" and lines[3] == "`gpt-4o-mini`"
    assert re.fullmatch(r"[▇▁]{10} \d+% of the cost · 1 request · \$\S+ · 0% 👍 of 1 rated",
                        lines[2])  # fmt: skip
    assert re.fullmatch(r"[▇▁]{10} \d+% of the cost · 2 requests · \$\S+ · 50% 👍 of 2 rated",
                        lines[4])  # fmt: skip
    [members] = [t for t in view_sections(view) if t.startswith("*Top members*")]
    assert f"\n<@{MEMBER}>\n" in members and f"\n<@{ADMIN}>\n" in members
    assert "*Daily cost*, " in shown
    assert "By day" not in shown and "```" not in shown


def test_the_menu_sets_the_dm_default_and_republishes(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    view = open_home(app)
    [option] = [o for o in menu(view)["options"] if o["value"] == "smart"]
    before = len(app.slack.calls_to("views.publish"))
    assert app.action(select_payload(option)).status == 200
    app.wait_idle()
    [call] = app.slack.calls_to("views.publish")[before:]
    shown = texts(call.arg("view"))
    assert "your default for DMs with me is now `smart` (`gpt-4o`)" in shown
    assert "*`gpt-4o`* answers — your default for DMs with me." in shown
    assert menu(call.arg("view"))["initial_option"]["value"] == "smart"
    with sessions() as session:
        rows = session.execute(
            select(ModelDefault.scope, ModelDefault.scope_id, ModelDefault.model)
        )
        assert {tuple(row) for row in rows} == {("user", MEMBER, "gpt-4o")}


def test_a_forged_choice_is_refused_in_the_view_and_changes_nothing(
    app: SlackAppHarness, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    option = {"text": {"type": "plain_text", "text": "gpt-9"}, "value": "gpt-9"}
    assert app.action(select_payload(option)).status == 200
    app.wait_idle()
    shown = texts(app.slack.calls_to("views.publish")[-1].arg("view"))
    assert ":no_entry: `gpt-9` is not a model you can choose here." in shown
    with sessions() as session:
        assert session.scalars(select(ModelDefault)).all() == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_large_catalogue_stays_within_slacks_limits(
    make_app: Callable[..., SlackAppHarness],
) -> None:
    long_names = tuple((f"model-{n:03d}-" + "x" * 90, f"vendor/model-{n}") for n in range(150))
    view = open_home(make_app(allowed_models=long_names))
    check_view_limits(view)
    assert len(menu(view)["options"]) == 100
    assert "The menu shows the first 100" in texts(view)


def test_the_event_is_acknowledged_before_the_view_is_built(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    slack.delay("users.info", 1.5)  # the admin check asks Slack
    event = {"type": "app_home_opened", "user": MEMBER, "channel": "DU", "tab": "home"}
    started = time.monotonic()
    assert app.event(event).status == 200
    assert time.monotonic() - started < 1.0
    app.wait_idle()
    assert len(slack.calls_to("views.publish")) == 1


def select_payload(option: dict[str, Any], user: str = MEMBER) -> dict[str, Any]:
    """A block_actions payload for choosing `option` in the Home tab's menu."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0001",
        "token": "unused",
        "container": {"type": "view", "view_id": "V0001"},
        "view": {"id": "V0001", "type": "home", "team_id": TEAM},
        "actions": [
            {
                "type": "static_select",
                "block_id": "home_dm_model",
                "action_id": HOME_MODEL_ACTION,
                "selected_option": option,
                "action_ts": str(time.time()),
            }
        ],
    }


def test_a_failed_call_is_an_error_that_cost_nothing_and_small_costs_show(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    answer_and_rate(app, model, sessions, user=MEMBER, rating="up")
    model.enqueue(FakeReply(status=500))  # refused before any text
    app.mention("[fast] another question", user=MEMBER)
    app.wait_idle()
    for user in (MEMBER, ADMIN):
        view = open_home(app, user)
        shown = texts(view)
        assert "*Requests*\n2 · 1 error" in shown
        # A sub-cent cost in digits that say it; no "unpriced" for a call that failed.
        cost = re.findall(r"\*Cost\*\n(\S+)", shown)[-1]  # the member's, the workspace's
        assert re.fullmatch(r"\$0\.0+[1-9]\d", cost), cost
        assert "price" not in shown and "unpriced" not in shown and "$0.00\n" not in shown
