"""`GET /metrics` end to end: turns through the real app, then a scrape compared with the rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Response, Turn
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.handlers.test_budgets import ADMIN, MEMBER, budget
from tests.harness import TEAM, SlackAppHarness

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(app: SlackAppHarness) -> Samples:
    """Every sample of the app's /metrics, by name and labels."""
    answer = app.get("/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.body)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


def test_the_input_tokens_scraped_equal_the_prompt_tokens_recorded(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.add_user("U0001", name="ada")
    model.enqueue(FakeReply(text="One.", usage={
        "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}))  # fmt: skip
    model.enqueue(FakeReply(text="Two.", model="gpt-4o-mini-2024-07-18", usage={
        "prompt_tokens": 1300, "completion_tokens": 70, "total_tokens": 1370}))  # fmt: skip
    model.enqueue(FakeReply(text="Three.", usage={
        "prompt_tokens": 5, "completion_tokens": 900, "total_tokens": 905}))  # fmt: skip
    model.enqueue(FakeReply(status=500, error_body={"error": {"message": "down"}}))

    ts = app.mention("first")
    app.wait_idle()
    app.say("second", thread_ts=ts)
    app.wait_idle()
    app.mention("third", channel="C0002")
    app.mention("fourth", channel="C0003")
    app.wait_idle()
    samples = scrape(app)

    with sessions() as session:
        rows = list(session.scalars(select(Response).order_by(Response.id)))
    assert len(rows) == 4
    assert sum(r.tokens_prompt for r in rows) == 1326
    input_tokens = total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input")
    output_tokens = total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output")
    assert input_tokens == sum(r.tokens_prompt for r in rows)
    assert output_tokens == sum(r.tokens_completion for r in rows)
    # One observation per answer the endpoint reported tokens for; the failed call reported none.
    assert total(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 3
    assert total(samples, "gen_ai_client_token_usage_sum",
                 gen_ai_request_model="gpt-4o-mini",
                 gen_ai_response_model="gpt-4o-mini-2024-07-18",
                 gen_ai_provider_name="openai",
                 gen_ai_token_type="input") == 1300  # fmt: skip
    # The OpenTelemetry bucket boundaries: 1300 input tokens fall in (1024, 4096].
    assert total(samples, "gen_ai_client_token_usage_bucket", gen_ai_token_type="input",
                 le="1024.0") == 2  # fmt: skip
    assert total(samples, "gen_ai_client_token_usage_bucket", gen_ai_token_type="input",
                 le="4096.0") == 3  # fmt: skip

    duration = "gen_ai_client_operation_duration_seconds_count"
    assert total(samples, duration) == 4
    assert total(samples, duration, error_type="") == 3
    assert total(samples, duration, error_type="InternalServerError") == 1
    assert total(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 3

    assert total(samples, "switchboard_turns_total", outcome="answered") == 3
    assert total(samples, "switchboard_turns_total", outcome="failed") == 1
    assert total(samples, "switchboard_turns_queued") == 0
    assert total(samples, "switchboard_turns_running") == 0
    cost = Decimal(str(total(samples, "switchboard_cost_usd_total", team_id=TEAM)))
    recorded = sum((r.cost_usd or Decimal(0)) for r in rows)
    assert recorded > 0
    assert abs(cost - recorded) < Decimal("0.000001")

    # Every event was acknowledged: two per mention, one per thread reply.
    assert total(samples, "switchboard_slack_acks_total", kind="events_api", status="200") == 7
    assert total(samples, "switchboard_slack_ack_duration_seconds_count", kind="events_api") == 7
    assert total(samples, "switchboard_slack_ack_duration_seconds_bucket",
                 kind="events_api", le="3.0") == 7  # fmt: skip


def test_slack_api_errors_are_counted_by_method_and_error(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    slack.fail("chat.startStream", error="channel_not_found", times=1)
    app.mention("hello")
    app.wait_idle()

    samples = scrape(app)
    errors = "switchboard_slack_api_errors_total"
    assert total(samples, errors, method="chat.startStream", error="channel_not_found") == 1
    assert total(samples, errors) == 1


def test_budget_refusals_are_counted_by_scope(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER)
    usage = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    model.default_reply = FakeReply(text="An answer.", usage=usage)
    app = make_app()
    budget(app, "set workspace 100 tokens")

    app.mention("a question", user=MEMBER)  # admitted: nothing spent yet
    app.wait_idle()
    app.mention("another", user=MEMBER)  # 150 tokens spent of 100
    app.wait_idle()

    samples = scrape(app)
    refusals = "switchboard_budget_refusals_total"
    assert total(samples, refusals, team_id=TEAM, scope="workspace") == 1
    assert total(samples, "switchboard_turns_total", outcome="refused") == 1
    assert total(samples, "switchboard_turns_total", outcome="answered") == 1
    assert total(samples, "switchboard_slack_acks_total", kind="slash_commands") == 1


def test_each_app_serves_its_own_registry(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI
) -> None:
    first = make_app()
    first.mention("hello")
    first.wait_idle()
    second = make_app()

    assert total(scrape(first), "switchboard_turns_total") == 1
    assert total(scrape(second), "switchboard_turns_total") == 0


def test_a_turn_whose_lease_ran_out_elsewhere_counts_as_taken_over(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(max_concurrent_turns=1, turn_poll_seconds=0.2)
    model.enqueue(FakeReply(text="Slow.", first_token_delay=1.5), FakeReply(text="Taken over."))
    app.mention("one", channel="C1")
    app.mention("two", channel="C2")  # waits: the only worker answers "one"
    with sessions.begin() as session:
        # As a process that claimed it and died leaves it: running, its lease run out.
        session.execute(
            update(Turn)
            .where(Turn.state == "queued")
            .values(state="running", lease_owner="gone:1:dead", attempts=1,
                    lease_until=datetime.now(UTC) - timedelta(seconds=5))
        )  # fmt: skip
    app.wait_idle(timeout=20)

    samples = scrape(app)
    assert total(samples, "switchboard_turn_takeovers_total") == 1
    assert total(samples, "switchboard_turns_total", outcome="answered") == 2
