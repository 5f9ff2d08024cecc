"""/model end to end: signed commands, actions and events into the real app, on the fakes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Conversation, Message, ModelDefault, Response, WorkspaceSettings
from tests.blockkit_dump import dump
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.handlers.member_words import settings_named
from tests.harness import TEAM, SlackAppHarness

ALIASES = (("fast", "gpt-4o-mini"), ("smart", "gpt-4o"), ("gpt-4o", "gpt-4o"))
ADMIN = "U0009"


@pytest.fixture
def app(make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI) -> SlackAppHarness:
    """The app with aliases in ALLOWED_MODELS and one admin (by Slack's own flag)."""
    slack.add_user(ADMIN, is_admin=True)
    return make_app(allowed_models=ALIASES)


def run(app: SlackAppHarness, text: str = "", **kwargs: Any) -> dict[str, Any]:
    """Send `/model TEXT`; check the ack is empty; the one ephemeral answer it led to."""
    before = len(app.slack.responses)
    ack = app.command("/model", text, **kwargs)
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    answers = app.slack.responses[before:]
    assert len(answers) == 1, answers
    return answers[0][1]


def models_used(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Response.model_used).order_by(Response.id)))


def defaults(sessions: sessionmaker[Session]) -> set[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(ModelDefault.scope, ModelDefault.scope_id, ModelDefault.model)
        )
        return {(*row,) for row in rows}


def public_notes(slack: FakeSlackAPI) -> list[str]:
    """Top-level messages the bot posted (not replies in threads)."""
    return [
        call.args.get("text") or call.args.get("markdown_text") or ""
        for call in slack.calls_to("chat.postMessage")
        if not call.args.get("thread_ts")
    ]


def thread_notices(slack: FakeSlackAPI, thread_ts: str) -> list[str]:
    return [
        call.args.get("markdown_text") or ""
        for call in slack.calls_to("chat.postMessage")
        if call.args.get("thread_ts") == thread_ts
    ]


def menu(answer: dict[str, Any]) -> dict[str, Any]:
    [block] = [b for b in answer["blocks"] if b["type"] == "actions"]
    return block


def press(
    app: SlackAppHarness, answer: dict[str, Any], button: str, *, choose: str | None,
    user: str = "U0001", channel: str = "C0001", channel_name: str = "general",
) -> dict[str, Any]:  # fmt: skip
    """Press the button labelled `button` of the menu in `answer`, `choose` picked in its select."""
    block = menu(answer)
    select_element = next(e for e in block["elements"] if e["type"] == "static_select")
    buttons = {e["text"]["text"]: e for e in block["elements"] if e["type"] == "button"}
    values: dict[str, Any] = {}
    if choose is not None:
        [option] = [o for o in select_element["options"] if o["value"] == choose]
        values = {
            block["block_id"]: {
                select_element["action_id"]: {"type": "static_select", "selected_option": option}
            }
        }
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0001",
        "token": "unused",
        "container": {"type": "message", "channel_id": channel, "is_ephemeral": True},
        "channel": {"id": channel, "name": channel_name},
        "state": {"values": values},
        "actions": [
            {
                "type": "button",
                "block_id": block["block_id"],
                "action_id": buttons[button]["action_id"],
                "value": buttons[button]["value"],
                "action_ts": str(time.time()),
            }
        ],
    }
    before = len(app.slack.responses)
    assert app.action(payload).status == 200
    app.wait_idle()
    [(_, answered)] = app.slack.responses[before:][-1:]
    return answered


# --- /model: what answers here ---------------------------------------------------------------


def test_model_alone_shows_the_model_the_reason_and_a_menu_only_to_the_caller(
    app: SlackAppHarness, model: FakeOpenAI
) -> None:
    answer = run(app)
    assert answer["response_type"] == "ephemeral"
    assert "*`gpt-4o-mini`* answers — the workspace's default model." in answer["text"]
    facts = answer["blocks"][1]["elements"][0]["text"]
    assert facts == "Workspace default: `gpt-4o-mini` · Channel defaults can be changed by anyone"
    assert settings_named(answer) == []
    dump("model_status_member", answer)
    select_element = menu(answer)["elements"][0]
    assert select_element["type"] == "static_select"
    assert [o["value"] for o in select_element["options"]] == ["fast", "smart", "gpt-4o"]
    assert select_element["options"][0]["text"]["text"] == "fast → gpt-4o-mini"
    labels = [e["text"]["text"] for e in menu(answer)["elements"][1:]]
    assert labels == ["Use in this channel", "Use for my next message"]
    assert [r for r in model.requests if r["_path"] == "/v1/models"] == []  # ALLOWED_MODELS


def test_without_allowed_models_the_menu_is_the_endpoints_list_fetched_once(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.models = ["gpt-4o-mini", "gpt-4o", "local-llama"]
    app = make_app()
    options = menu(run(app))["elements"][0]["options"]
    assert [o["value"] for o in options] == ["gpt-4o", "gpt-4o-mini", "local-llama"]
    assert "local-llama" in run(app, "local-llama")["text"]
    assert "not a model" in run(app, "gpt-5")["text"]
    assert len([r for r in model.requests if r["_path"] == "/v1/models"]) == 1  # cached
    assert defaults(sessions) == {("channel", "C0001", "local-llama")}


def test_the_command_is_acknowledged_before_slow_work(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    slack.add_user("U0001")  # fetched from a slow users.info
    slack.delay("users.info", 1.5)
    started = time.monotonic()
    ack = app.command("/model", "")
    assert time.monotonic() - started < 1.0
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    assert "gpt-4o-mini" in slack.responses[-1][1]["text"]


def test_an_unreachable_endpoint_is_explained_and_nothing_is_set(
    make_app: Callable[..., SlackAppHarness], sessions: sessionmaker[Session]
) -> None:
    app = make_app(openai_base_url="http://127.0.0.1:9/v1")
    shown = run(app)
    assert not [b for b in shown["blocks"] if b["type"] == "actions"]  # no menu to offer
    assert "could not get the list of models" in shown["blocks"][-1]["elements"][0]["text"]
    assert "could not get the list of models" in run(app, "gpt-4o")["text"]
    assert settings_named(shown) == []  # the log names ALLOWED_MODELS, members do not read it
    assert defaults(sessions) == set()


def test_help_lists_the_syntax(app: SlackAppHarness) -> None:
    text = run(app, "help")["text"]
    for syntax in ("/model NAME PROMPT", "/model workspace NAME", "/model reset"):
        assert syntax in text
    assert "/model admins-only on|off" in text
    assert "[NAME]" in text and "model NAME" in text
    assert "the workspace's default model" in text and settings_named(text) == []


# --- the chain, level by level ---------------------------------------------------------------


def test_every_level_of_the_chain_and_their_precedence(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    def mention(text: str, **kwargs: Any) -> str:
        ts = app.mention(text, **kwargs)
        app.wait_idle()  # one at a time, so the responses come in order
        return ts

    mention("setting")  # 5. DEFAULT_MODEL
    set_workspace = run(app, "workspace smart", user=ADMIN)["text"]
    assert "the workspace's default model is now `smart` (`gpt-4o`)" in set_workspace
    assert "the workspace's default, chosen by an admin" in run(app)["text"]
    mention("workspace")  # 4. the workspace default

    run(app, "fast")
    assert "this channel's default" in run(app)["text"]
    mention("channel")  # 3. the channel's default beats the workspace's...
    mention("other channel", channel="C0002")  # ...in its own channel only

    root = mention("conversation")
    run(app, "smart")  # 2. a conversation keeps the model it started with
    app.say("follow-up", thread_ts=root)
    app.wait_idle()
    app.say("[smart] per message", thread_ts=root)  # 1. an override on the message wins
    app.wait_idle()

    assert models_used(sessions) == [
        "gpt-4o-mini",  # setting
        "gpt-4o",  # workspace
        "gpt-4o-mini",  # channel
        "gpt-4o",  # workspace, in C0002
        "gpt-4o-mini",  # channel, a new conversation
        "gpt-4o-mini",  # that conversation, after the channel default changed
        "gpt-4o",  # message override
    ]
    assert [r["model"] for r in model.completions()] == models_used(sessions)


def test_resets_fall_back_one_level_at_a_time(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    run(app, "workspace smart", user=ADMIN)
    run(app, "fast")
    assert (
        "Cleared this channel's default. New conversations use `gpt-4o`"
        in run(app, "reset")["text"]
    )
    note = public_notes(slack)[-1]
    assert note.endswith(
        "cleared this channel's model. New conversations here use `gpt-4o` "
        "(the workspace's default, chosen by an admin)."
    )
    assert settings_named(note) == []
    dump("model_note_cleared", {"text": note})
    admin_view = run(app, user=ADMIN)
    assert "Workspace default: `gpt-4o` (chosen by an admin)" in str(admin_view["blocks"])
    assert settings_named(admin_view) == []
    dump("model_status_admin", admin_view)
    assert "Nothing to clear" in run(app, "reset")["text"]
    cleared = run(app, "workspace reset", user=ADMIN)["text"]
    assert "New conversations use `gpt-4o-mini` (the workspace's default model)" in cleared
    assert defaults(sessions) == set()
    app.mention("hi")
    app.wait_idle()
    assert models_used(sessions) == ["gpt-4o-mini"]


def test_setting_a_channel_default_confirms_privately_and_notes_it_publicly(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    answer = run(app, "smart", user="U0001")
    assert answer["response_type"] == "ephemeral"
    assert "this channel's default is now `smart` (`gpt-4o`)" in answer["text"]
    [note] = public_notes(slack)
    assert "<@U0001>" in note and "`smart` (`gpt-4o`)" in note
    assert slack.calls_to("chat.postMessage")[0].args["channel"] == "C0001"
    assert defaults(sessions) == {("channel", "C0001", "gpt-4o")}


def test_in_a_dm_with_the_bot_the_default_is_the_callers_own(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    dm = {"channel": "D0001", "channel_name": "directmessage"}
    assert "your default for DMs with me is now `smart`" in run(app, "smart", **dm)["text"]
    assert public_notes(slack) == []  # nobody else is there to tell
    assert "your default for DMs with me" in run(app, **dm)["text"]
    assert defaults(sessions) == {("user", "U0001", "gpt-4o")}

    app.say("in my DM", channel="D0001", channel_type="im")
    app.mention("in a channel")
    app.say("someone else's DM", user="U0002", channel="D0002", channel_type="im")
    app.wait_idle()
    assert sorted(models_used(sessions)) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    with sessions() as session:
        mine = session.scalars(select(Conversation).where(Conversation.channel_id == "D0001"))
        assert mine.one().default_model == "gpt-4o"


def test_aliases_and_model_ids_are_accepted_in_any_case(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    run(app, "FAST")
    assert defaults(sessions) == {("channel", "C0001", "gpt-4o-mini")}
    run(app, "gpt-4o-mini")
    assert "`gpt-4o-mini`" in run(app)["text"]
    run(app, "[smart]")  # the inline form, tried as a command
    assert defaults(sessions) == {("channel", "C0001", "gpt-4o")}


# --- overrides that must not stick -----------------------------------------------------------


def test_inline_override_is_for_that_message_only(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = app.mention("[smart] first with the big one")
    app.wait_idle()
    app.say("second, default again", thread_ts=root)
    app.wait_idle()
    app.mention("a new thread")
    app.wait_idle()

    assert models_used(sessions) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert model.completions()[0]["messages"][-1]["content"] == "first with the big one"
    with sessions() as session:
        users = session.scalars(
            select(Message.model).where(Message.role == "user").order_by(Message.id)
        )
        assert list(users) == ["gpt-4o", None, None]
        conversation = session.scalars(select(Conversation).where(Conversation.thread_ts == root))
        assert conversation.one().default_model == "gpt-4o-mini"


def test_model_in_a_thread_changes_that_thread_only_and_is_not_sent_to_the_model(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = app.mention("hello")
    app.wait_idle()
    app.say("model smart", thread_ts=root)
    app.wait_idle()
    assert len(model.completions()) == 1  # the command went to nobody
    assert any("`gpt-4o`" in text for text in thread_notices(slack, root))

    app.say("and now?", thread_ts=root)
    app.wait_idle()
    other = app.mention("another thread")
    app.wait_idle()
    assert models_used(sessions) == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]
    assert all("model smart" not in m["content"] for m in model.completions()[1]["messages"])
    with sessions() as session:
        by_thread = dict(
            session.execute(select(Conversation.thread_ts, Conversation.default_model)).all()
        )
    assert by_thread == {root: "gpt-4o", other: "gpt-4o-mini"}


def test_model_at_the_top_of_a_dm_sets_the_persons_dm_model(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    dm = {"channel": "D0001", "channel_type": "im"}
    command = app.say("model smart", **dm)  # a top-level DM message is a thread of its own
    app.wait_idle()
    assert model.completions() == []  # the command went to nobody
    [said] = thread_notices(slack, command)
    assert said.startswith("From now on, your DMs with me use `gpt-4o`.")
    assert "answers in this thread" not in said and settings_named(said) == []
    dump("dm_model_set", {"markdown_text": said})
    assert defaults(sessions) == {("user", "U0001", "gpt-4o")}
    assert (
        "your default for DMs with me"
        in run(app, channel="D0001", channel_name="directmessage")["text"]
    )

    app.say("next DM", **dm)  # a new conversation: it starts with the DM model
    app.wait_idle()
    app.say("a reply in that DM thread", thread_ts=command, **dm)
    app.wait_idle()
    app.say("model fast", thread_ts=command, **dm)  # a reply: that thread only
    app.wait_idle()
    assert any("`gpt-4o-mini` answers in this thread" in t for t in thread_notices(slack, command))
    app.say("and now?", thread_ts=command, **dm)
    app.say("someone else's DM", user="U0002", channel="D0002", channel_type="im")
    app.wait_idle()
    app.say("another DM", **dm)
    app.wait_idle()
    assert defaults(sessions) == {("user", "U0001", "gpt-4o")}
    assert models_used(sessions) == ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]


def test_model_name_prompt_posts_the_prompt_and_answers_it_once_with_that_model(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    ack = app.command("/model", "smart what is <!channel> & co?", user="U0001")
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()

    [posted] = slack.calls_to("chat.postMessage")
    assert posted.args["channel"] == "C0001" and not posted.args.get("thread_ts")
    text = posted.args["text"]
    assert text.startswith("<@U0001> asked `smart` (`gpt-4o`)")
    assert "&lt;!channel&gt; &amp; co?" in text  # reposted, it cannot ping the channel
    ts = posted.response["ts"]
    assert slack.calls_to("chat.startStream")[0].args["thread_ts"] == ts
    assert model.completions()[0]["messages"][-1]["content"] == "what is <!channel> & co?"

    # Slack sends our own message back as an event; it is not answered again.
    app.say(text, ts=ts, bot_id="BBOT")
    app.say("and a follow-up", thread_ts=ts)  # goes back to the channel's model
    app.wait_idle()
    assert models_used(sessions) == ["gpt-4o", "gpt-4o-mini"]
    with sessions() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.thread_ts, conversation.default_model) == (ts, "gpt-4o-mini")
    assert defaults(sessions) == set()
    assert slack.responses == []  # the thread is the answer; nothing ephemeral


def test_model_name_prompt_in_a_channel_the_bot_is_not_in(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    slack.fail("chat.postMessage", error="not_in_channel", times=1)
    assert "cannot post in this conversation" in run(app, "smart hi there")["text"]
    assert model.completions() == []


def test_a_channel_note_that_cannot_be_posted_still_saves_the_change(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    slack.fail("chat.postMessage", error="not_in_channel", times=1)
    ack = app.command("/model", "smart")
    assert ack.status == 200
    app.wait_idle()
    texts = [body["text"] for _, body in slack.responses]
    assert "this channel's default is now" in texts[0]
    assert "could not tell the channel" in texts[1]
    assert defaults(sessions) == {("channel", "C0001", "gpt-4o")}


def test_model_used_is_what_the_endpoint_says_answered(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="hi", model="gpt-4o-2024-08-06"))
    app.command("/model", "smart hello")
    app.wait_idle()
    assert model.completions()[0]["model"] == "gpt-4o"
    assert models_used(sessions) == ["gpt-4o-2024-08-06"]


# --- the menu's buttons ----------------------------------------------------------------------


def test_menu_sets_the_channel_default(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    answered = press(app, run(app), "Use in this channel", choose="smart")
    assert answered["replace_original"] is True
    assert "this channel's default is now `smart` (`gpt-4o`)" in answered["text"]
    assert "<@U0001>" in public_notes(slack)[0]
    assert defaults(sessions) == {("channel", "C0001", "gpt-4o")}


def test_menu_in_a_dm_sets_the_callers_dm_default(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    dm = {"channel": "D0001", "channel_name": "directmessage"}
    shown = run(app, **dm)
    answered = press(app, shown, "Use in my DMs", choose="smart", **dm)
    assert "your default for DMs with me is now" in answered["text"]
    assert defaults(sessions) == {("user", "U0001", "gpt-4o")}


def test_menu_chooses_the_next_message_only(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    answered = press(app, run(app), "Use for my next message", choose="smart")
    assert "Your next message here goes to `smart` (`gpt-4o`)" in answered["text"]
    assert "next message here goes to *`gpt-4o`*" in run(app)["text"]

    app.mention("someone else first", user="U0002")  # not theirs to use
    app.wait_idle()
    root = app.mention("mine")
    app.wait_idle()
    app.say("and again", thread_ts=root)
    app.wait_idle()
    app.mention("later")
    app.wait_idle()
    assert models_used(sessions) == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    with sessions() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.thread_ts == root))
        assert conversation.one().default_model == "gpt-4o-mini"  # the override did not stick


def test_a_button_without_a_choice_asks_for_one(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    answered = press(app, run(app), "Use in this channel", choose=None)
    assert "Choose a model in the menu first" in answered["text"]
    assert answered["replace_original"] is False
    assert defaults(sessions) == set()


def test_choosing_in_the_menu_alone_changes_nothing(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    block = menu(run(app))
    select_element = block["elements"][0]
    option = select_element["options"][1]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U0001", "team_id": TEAM},
        "channel": {"id": "C0001", "name": "general"},
        "container": {"type": "message", "channel_id": "C0001", "is_ephemeral": True},
        "state": {"values": {}},
        "actions": [
            {
                "type": "static_select",
                "block_id": block["block_id"],
                "action_id": select_element["action_id"],
                "selected_option": option,
                "action_ts": "1",
            }
        ],
    }
    before = len(slack.responses)
    assert app.action(payload).status == 200
    app.wait_idle()
    assert len(slack.responses) == before
    assert defaults(sessions) == set()


# --- who may do what -------------------------------------------------------------------------


def test_admins_can_restrict_channel_defaults_to_admins(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(allowed_models=ALIASES, admin_user_ids=frozenset({"U0008"}))
    assert "only admins" in run(app, "admins-only on", user="U0008")["text"]
    with sessions() as session:
        assert session.get_one(WorkspaceSettings, TEAM).channel_defaults_admins_only is True

    shown = run(app, user="U0001")
    assert "changed by only admins" in shown["blocks"][1]["elements"][0]["text"]
    labels = [e["text"]["text"] for e in menu(shown)["elements"] if e["type"] == "button"]
    assert labels == ["Use for my next message"]  # no channel button for them
    assert "Only workspace admins can change this channel's" in run(app, "smart")["text"]
    assert "Only workspace admins" in run(app, "reset")["text"]
    assert "Only workspace admins" in press(app, run(app, user="U0008"), "Use in this channel",
                                            choose="smart")["text"]  # fmt: skip
    run(app, "smart", channel="D0001", channel_name="directmessage")  # their DMs are theirs
    assert defaults(sessions) == {("user", "U0001", "gpt-4o")}

    run(app, "smart", user="U0008")  # an admin still can
    assert ("channel", "C0001", "gpt-4o") in defaults(sessions)
    run(app, "admins-only off", user="U0008")
    run(app, "fast", user="U0001")
    assert ("channel", "C0001", "gpt-4o-mini") in defaults(sessions)


# --- bad input: a specific message each, and nothing changed ---------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("gpt-5", "`gpt-5` is not a model you can choose here"),
        ("fats", "Did you mean `fast`?"),
        ("smrt tell me a joke", "`smrt` is not a model"),
        ("x" * 256, "names are at most 255"),
        ("fast " + "y" * 4_001, "takes at most 4,000"),
        ("workspce fast", "Did you mean `/model workspace`?"),
        ("reset now", "`/model reset` takes nothing after it"),
        ("workspace", "Use `/model workspace NAME`"),
        ("workspace fast smart", "Use `/model workspace NAME`"),
        ("admins-only maybe", "Use `/model admins-only on`"),
        ("workspace smart", "Only workspace admins can change the workspace default"),
        ("workspace reset", "Only workspace admins can change the workspace default"),
        ("admins-only on", "Only workspace admins can decide"),
        ("workspace gpt-5", "Only workspace admins"),
    ],
)
def test_bad_input_is_refused_privately_and_changes_nothing(
    app: SlackAppHarness,
    slack: FakeSlackAPI,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    text: str,
    says: str,
) -> None:
    run(app, "workspace fast", user=ADMIN)
    before = defaults(sessions)
    notes = len(public_notes(slack))
    answer = run(app, text, user="U0001")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":no_entry:")
    assert says in answer["text"]
    assert defaults(sessions) == before
    assert len(public_notes(slack)) == notes
    assert model.completions() == []
    with sessions() as session:
        assert session.get(WorkspaceSettings, TEAM) is None


def test_unknown_model_names_the_choices(app: SlackAppHarness) -> None:
    text = run(app, "gpt-5")["text"]
    assert "Choices: `fast`, `smart`, `gpt-4o`" in text
    assert "/model help" in text


def test_admins_get_specific_messages_for_bad_workspace_input(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    assert "`gpt-5` is not a model" in run(app, "workspace gpt-5", user=ADMIN)["text"]
    assert "Nothing to clear" in run(app, "workspace reset", user=ADMIN)["text"]
    assert defaults(sessions) == set()


def test_model_name_prompt_in_a_dm_with_the_bot(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    run(app, "fast", channel="D0001", channel_name="directmessage")  # their DM default
    app.command("/model", "smart hi", channel="D0001", channel_name="directmessage")
    app.wait_idle()
    [posted] = slack.calls_to("chat.postMessage")
    assert posted.args["channel"] == "D0001"
    app.say("follow-up", channel="D0001", channel_type="im", thread_ts=posted.response["ts"])
    app.wait_idle()
    assert models_used(sessions) == ["gpt-4o", "gpt-4o-mini"]
