"""The catalogue, the chain of defaults and /model's decisions, on a real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import Profile, UserDirectory
from bot.model_choice.chain import (
    Catalogue,
    CatalogueUnavailable,
    Choice,
    ModelChooser,
    UnknownModel,
    parse_inline_override,
    parse_thread_command,
)
from bot.model_choice.commands import (
    Ask,
    Changed,
    Help,
    ModelCommandService,
    Place,
    Refused,
    Status,
)
from db.models import Conversation, WorkspaceSettings

TEAM = "T1"
ALIASES = (("fast", "gpt-4o-mini"), ("smart", "gpt-4o"))


class Endpoint:
    """Stands in for `GET /models`: counts calls, and fails when told to."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.calls = 0
        self.down = False

    def __call__(self) -> list[str]:
        self.calls += 1
        if self.down:
            raise ConnectionError("endpoint down")
        return list(self.models)


class Profiles:
    """A `ProfileSource` with the admins given."""

    def __init__(self, admins: set[str]) -> None:
        self.admins = admins

    def fetch(self, team_id: str, slack_user_id: str) -> Profile | None:
        return Profile(slack_user_id.lower(), slack_user_id, is_admin=slack_user_id in self.admins)


@pytest.fixture
def chooser() -> ModelChooser:
    return ModelChooser(Catalogue(ALIASES, Endpoint([])), "default-model")


@pytest.fixture
def service(sessions: sessionmaker[Session], chooser: ModelChooser) -> ModelCommandService:
    users = UserDirectory(sessions, Profiles({"UADMIN"}))
    return ModelCommandService(sessions, users=users, models=chooser)


def here(
    session: Session, chooser: ModelChooser, *, channel: str = "C1", user: str = "U1"
) -> Choice:
    return chooser.default_for(
        session, team_id=TEAM, channel_id=channel, slack_user_id=user, is_dm=channel[0] == "D"
    )


# --- the catalogue ---------------------------------------------------------------------------


def test_allowed_models_are_the_catalogue_with_their_aliases() -> None:
    endpoint = Endpoint(["other"])
    catalogue = Catalogue(ALIASES, endpoint)
    assert catalogue.entries() == {"fast": "gpt-4o-mini", "smart": "gpt-4o"}
    assert catalogue.resolve("fast") == "gpt-4o-mini"
    assert catalogue.resolve("SMART") == "gpt-4o"
    assert catalogue.resolve("gpt-4o") == "gpt-4o"  # a model an alias stands for
    with pytest.raises(UnknownModel):
        catalogue.resolve("other")
    assert endpoint.calls == 0


def test_unknown_names_are_named_with_suggestions_and_choices() -> None:
    catalogue = Catalogue(ALIASES, Endpoint([]))
    with pytest.raises(UnknownModel) as raised:
        catalogue.resolve("smrt")
    assert raised.value.suggestions[0] == "smart"
    message = str(raised.value)
    assert message.startswith("`smrt` is not a model you can choose here. Did you mean `smart`")
    assert message.endswith("Choices: `fast`, `smart`.")


def test_the_endpoints_list_is_cached_and_refreshed() -> None:
    endpoint = Endpoint(["a", "b"])
    cached = Catalogue((), endpoint)
    assert cached.resolve("a") == "a"
    endpoint.models = ["a", "b", "c"]
    with pytest.raises(UnknownModel):
        cached.resolve("c")  # still the cached list
    assert endpoint.calls == 1

    fresh = Catalogue((), endpoint, max_age=0)
    assert fresh.resolve("c") == "c"
    endpoint.models = ["d"]
    assert fresh.resolve("d") == "d"


def test_a_failing_endpoint_keeps_the_last_list_or_says_it_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = Endpoint(["a"])
    catalogue = Catalogue((), endpoint, max_age=0)
    assert catalogue.resolve("a") == "a"
    endpoint.down = True
    assert catalogue.resolve("a") == "a"  # the last list still serves

    with pytest.raises(CatalogueUnavailable) as raised:
        Catalogue((), endpoint).entries()
    # Members read plain words; the operator's log names the setting that helps.
    assert "ALLOWED_MODELS" not in str(raised.value)
    assert "could not get the list of models" in str(raised.value)
    assert "ALLOWED_MODELS" in caplog.text


def test_a_failing_endpoint_is_not_asked_again_at_once() -> None:
    endpoint = Endpoint(["a"])
    endpoint.down = True
    catalogue = Catalogue((), endpoint)
    for _ in range(3):
        with pytest.raises(CatalogueUnavailable):
            catalogue.entries()
    assert endpoint.calls == 1  # the next attempt waits; nobody queues behind a dead endpoint

    flaky = Endpoint(["a"])
    stale = Catalogue((), flaky, max_age=0)
    stale.entries()
    flaky.down = True
    for _ in range(3):
        assert stale.resolve("a") == "a"
    assert flaky.calls == 2  # one success, one failure, then the stale list is served


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[fast] hello", ("fast", "hello")),
        ("  [gpt-4o]\nmulti\nline ", ("gpt-4o", "multi\nline")),
        ("[fast]", ("fast", "")),
        ("no override", (None, "no override")),
        ("[two words] hi", (None, "[two words] hi")),
        ("see [fast] later", (None, "see [fast] later")),
    ],
)
def test_parse_inline_override(text: str, expected: tuple[str | None, str]) -> None:
    assert parse_inline_override(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("model fast", "fast"), ("  Model  gpt-4o ", "gpt-4o"), ("model", None), ("a model x", None)],
)
def test_parse_thread_command(text: str, expected: str | None) -> None:
    assert parse_thread_command(text) == expected


# --- the chain -------------------------------------------------------------------------------


def test_the_chain_falls_through_dm_or_channel_workspace_and_setting(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    with sessions.begin() as session:
        assert here(session, chooser) == Choice("default-model", "setting")
        chooser.set_default(
            session, team_id=TEAM, scope="workspace", scope_id="", model="w", set_by="UADMIN"
        )
        assert here(session, chooser) == Choice("w", "workspace")
        chooser.set_default(
            session, team_id=TEAM, scope="channel", scope_id="C1", model="c", set_by="U1"
        )
        chooser.set_default(
            session, team_id=TEAM, scope="user", scope_id="U1", model="u", set_by="U1"
        )
        assert here(session, chooser) == Choice("c", "channel")
        assert here(session, chooser, channel="C2") == Choice("w", "workspace")
        assert here(session, chooser, channel="D1") == Choice("u", "dm")
        assert here(session, chooser, channel="D2", user="U2") == Choice("w", "workspace")
        # Another workspace sees none of it.
        other = chooser.default_for(
            session, team_id="T2", channel_id="C1", slack_user_id="U1", is_dm=False
        )
        assert other == Choice("default-model", "setting")


def test_set_default_replaces_and_reset_clears(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    with sessions.begin() as session:
        for model in ("one", "two"):
            chooser.set_default(
                session, team_id=TEAM, scope="channel", scope_id="C1", model=model, set_by="U1"
            )
        assert here(session, chooser).model == "two"
        assert chooser.reset_default(session, team_id=TEAM, scope="channel", scope_id="C1")
        assert not chooser.reset_default(session, team_id=TEAM, scope="channel", scope_id="C1")
        assert here(session, chooser).level == "setting"


def test_a_turn_uses_its_override_else_the_conversation_default(chooser: ModelChooser) -> None:
    conversation = Conversation(default_model="conv")
    assert chooser.for_turn(conversation.default_model, None) == Choice("conv", "conversation")
    assert chooser.for_turn(conversation.default_model, "msg") == Choice("msg", "message")
    assert Choice("msg", "message").reason == "an override on this message"


def test_a_message_s_own_words_choose_its_model_before_the_stored_choice(
    chooser: ModelChooser,
) -> None:
    stored = chooser.for_turn("conv", "msg")
    inline = chooser.for_words(stored, "[smart] why?")
    assert (inline.choice, inline.prompt, inline.override) == (
        Choice("gpt-4o", "message"),
        "why?",
        "gpt-4o",
    )
    command = chooser.for_words(stored, "model fast")
    assert (command.choice, command.sets_default) == (
        Choice("gpt-4o-mini", "conversation"),
        "gpt-4o-mini",
    )
    assert not command.for_dms
    top_of_dm = chooser.for_words(stored, "model fast", starts_dm=True)
    assert (top_of_dm.choice, top_of_dm.sets_default, top_of_dm.for_dms) == (
        Choice("gpt-4o-mini", "dm"),
        "gpt-4o-mini",
        True,
    )
    unknown = chooser.for_words(stored, "model nonesuch")
    assert unknown.sets_default is None and unknown.unknown is not None
    assert "nonesuch" in unknown.unknown
    plain = chooser.for_words(chooser.for_turn("conv", None), "[WIP] look at this")
    assert (plain.choice, plain.prompt, plain.override) == (
        Choice("conv", "conversation"),
        "[WIP] look at this",
        None,
    )


def test_a_pending_override_is_used_once_by_its_person_in_its_channel(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    where = {"team_id": TEAM, "channel_id": "C1", "slack_user_id": "U1"}
    with sessions.begin() as session:
        chooser.set_pending(session, **where, model="first")
        chooser.set_pending(session, **where, model="second")  # the later choice wins
        assert chooser.peek_pending(session, **where) == "second"
        assert chooser.take_pending(session, **where | {"slack_user_id": "U2"}) is None
        assert chooser.take_pending(session, **where | {"channel_id": "C2"}) is None
        assert chooser.take_pending(session, **where) == "second"
        assert chooser.take_pending(session, **where) is None


def test_admins_only_is_off_until_switched_on(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    with sessions.begin() as session:
        assert chooser.channel_defaults_admins_only(session, TEAM) is False
        chooser.set_channel_defaults_admins_only(session, TEAM, True, set_by="UADMIN")
        assert chooser.channel_defaults_admins_only(session, TEAM) is True
        chooser.set_channel_defaults_admins_only(session, TEAM, False, set_by="UADMIN")
        assert chooser.channel_defaults_admins_only(session, TEAM) is False


def test_admins_switching_at_once_both_succeed_and_the_last_one_wins(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    errors: list[Exception] = []

    def switch_off() -> None:
        try:
            with sessions.begin() as session:
                chooser.set_channel_defaults_admins_only(session, TEAM, False, set_by="U2")
        except Exception as exc:
            errors.append(exc)

    with sessions.begin() as session:
        chooser.set_channel_defaults_admins_only(session, TEAM, True, set_by="U1")
        session.flush()
        other = threading.Thread(target=switch_off)
        other.start()
        other.join(0.3)  # it waits for this transaction: the row's key is taken
        assert other.is_alive()
    other.join(10)
    assert errors == []
    with sessions() as session:
        row = session.get_one(WorkspaceSettings, TEAM)
        assert (row.channel_defaults_admins_only, row.updated_by) == (False, "U2")


# --- /model's decisions ----------------------------------------------------------------------

CHANNEL = Place(TEAM, "C1", "U1")
DM = Place(TEAM, "D1", "U1", is_dm=True)
ADMIN = Place(TEAM, "C1", "UADMIN")


def test_command_text_is_read_into_outcomes(service: ModelCommandService) -> None:
    assert isinstance(service.run(CHANNEL, "  "), Status)
    assert isinstance(service.run(CHANNEL, "help"), Help)
    assert service.run(CHANNEL, "fast  what is\nthis?") == Ask(
        "gpt-4o-mini", "fast", "what is\nthis?"
    )
    assert service.run(CHANNEL, "smart") == Changed("channel", model="gpt-4o", name="smart")
    assert service.run(DM, "fast") == Changed("dm", model="gpt-4o-mini", name="fast")
    assert service.run(ADMIN, "admins-only ON") == Changed("admins_only", admins_only=True)
    assert service.run(ADMIN, "workspace fast") == Changed(
        "workspace", model="gpt-4o-mini", name="fast"
    )


def test_status_says_what_answers_here_and_what_the_caller_may_do(
    service: ModelCommandService,
) -> None:
    service.run(ADMIN, "workspace smart")
    service.run(ADMIN, "admins-only on")
    service.choose(CHANNEL, "fast", target="next")
    status = service.status(CHANNEL)
    assert isinstance(status, Status)
    assert status.here == Choice("gpt-4o", "workspace")
    assert (status.pending, status.workspace_default) == ("gpt-4o-mini", "gpt-4o")
    assert status.admins_only and not status.is_admin and not status.may_set_here
    assert status.entries == dict(ALIASES)
    assert service.status(DM).may_set_here  # the caller's own DMs
    assert service.status(ADMIN).may_set_here


def test_resets_say_what_applies_now(service: ModelCommandService) -> None:
    service.run(ADMIN, "workspace smart")
    service.run(CHANNEL, "fast")
    assert service.run(CHANNEL, "reset") == Changed(
        "channel", now=Choice("gpt-4o", "workspace"), existed=True
    )
    assert service.run(CHANNEL, "reset") == Changed(
        "channel", now=Choice("gpt-4o", "workspace"), existed=False
    )
    assert service.run(ADMIN, "workspace reset") == Changed(
        "workspace", now=Choice("default-model", "setting"), existed=True
    )


@pytest.mark.parametrize(
    ("place", "text", "says"),
    [
        (CHANNEL, "nope", "`nope` is not a model"),
        (CHANNEL, "x" * 256, "at most 255"),
        (CHANNEL, "fast " + "p" * 4_001, "at most 4,000"),
        (CHANNEL, "rest", "Or did you mean `/model reset`?"),
        (CHANNEL, "workspce smart", "Did you mean `/model workspace`?"),
        (CHANNEL, "workspace smart", "Only workspace admins"),
        (CHANNEL, "admins-only off", "Only workspace admins"),
        (ADMIN, "admins-only", "Use `/model admins-only on`"),
        (ADMIN, "workspace", "Use `/model workspace NAME`"),
        (ADMIN, "reset please", "takes nothing after it"),
    ],
)
def test_bad_input_is_refused(
    service: ModelCommandService, place: Place, text: str, says: str
) -> None:
    outcome = service.run(place, text)
    assert isinstance(outcome, Refused)
    assert says in outcome.message


def test_admins_only_restricts_channels_but_not_dms(service: ModelCommandService) -> None:
    service.run(ADMIN, "admins-only on")
    assert isinstance(service.run(CHANNEL, "fast"), Refused)
    assert isinstance(service.run(CHANNEL, "reset"), Refused)
    assert isinstance(service.choose(CHANNEL, "fast", target="next"), Changed)  # one message
    assert isinstance(service.run(DM, "fast"), Changed)
    assert isinstance(service.run(ADMIN, "fast"), Changed)


def test_choosing_the_next_message_twice_keeps_the_latest_choice(
    sessions: sessionmaker[Session], chooser: ModelChooser
) -> None:
    place = {"team_id": TEAM, "channel_id": "C1", "slack_user_id": "U1"}
    for model in ("first", "second"):
        with sessions.begin() as session:
            chooser.set_pending(session, **place, model=model)
    with sessions.begin() as session:
        assert chooser.take_pending(session, **place) == "second"
        assert chooser.take_pending(session, **place) is None


# --- the catalogue under concurrency and inline overrides -------------------------------------


class SlowEndpoint(Endpoint):
    """An endpoint whose `GET /models` takes until `release` is set."""

    def __init__(self, models: list[str]) -> None:
        super().__init__(models)
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self) -> list[str]:
        self.started.set()
        self.release.wait(30)
        return super().__call__()


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:  # the test looks at what came out
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_a_slow_fetch_does_not_hold_up_callers_with_a_cached_list() -> None:
    endpoint = SlowEndpoint(["a"])
    endpoint.release.set()
    catalogue = Catalogue((), endpoint, max_age=0)
    assert catalogue.resolve("a") == "a"
    endpoint.release.clear()
    endpoint.models = ["a", "b"]

    fetcher, fetched = _in_thread(catalogue.entries)
    assert endpoint.started.wait(5)
    started = time.monotonic()
    assert catalogue.entries() == {"a": "a"}  # the stale list, at once
    assert time.monotonic() - started < 1.0

    endpoint.release.set()
    fetcher.join(5)
    assert fetched == [{"a": "a", "b": "b"}]
    assert endpoint.calls == 2


def test_without_a_list_callers_wait_for_the_one_fetch_in_flight_bounded() -> None:
    endpoint = SlowEndpoint(["a"])
    catalogue = Catalogue((), endpoint, wait=0.3)
    first, first_result = _in_thread(catalogue.entries)
    assert endpoint.started.wait(5)

    started = time.monotonic()
    with pytest.raises(CatalogueUnavailable):
        catalogue.entries()  # gives up after `wait`, not after the fetch
    assert time.monotonic() - started < 2.0

    second, second_result = _in_thread(catalogue.entries)
    time.sleep(0.05)
    endpoint.release.set()
    first.join(5)
    second.join(5)
    assert first_result == [{"a": "a"}] and second_result == [{"a": "a"}]
    assert endpoint.calls == 1  # one fetch served everyone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[fast] hello", ("gpt-4o-mini", "hello")),
        ("[SMART] hi", ("gpt-4o", "hi")),
        ("[gpt-4o] hi", ("gpt-4o", "hi")),
        ("[fast]", ("gpt-4o-mini", "")),
        ("[WIP] can you review this?", (None, "[WIP] can you review this?")),
        ("[1/3] part one", (None, "[1/3] part one")),
        ("no override", (None, "no override")),
    ],
)
def test_a_leading_name_overrides_only_when_it_is_a_model(
    text: str, expected: tuple[str | None, str]
) -> None:
    assert Catalogue(ALIASES, Endpoint([])).split_override(text) == expected


def test_without_a_catalogue_a_leading_name_stays_in_the_prompt() -> None:
    endpoint = Endpoint(["a"])
    endpoint.down = True
    catalogue = Catalogue((), endpoint)
    assert catalogue.split_override("[a] hello") == (None, "[a] hello")
    endpoint.down = False
    assert Catalogue((), endpoint).split_override("[a] hello") == ("a", "hello")
