"""Socket Mode against a local Socket Mode server: every envelope acknowledged well within 3 s.

The real app (its runtime, its Bolt app, its database) is connected with `SocketMode`, the
client `python -m bot socket` uses, to tests/fakes/socket_mode.py, which Slack's own faults
are played on: a routine refresh, a connection dropped without a word, and one cut in the
middle of an envelope.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.shell.socket_mode import SocketMode
from bot.shell.wiring import Runtime, create_runtime
from tests.bot.shell.test_server import _start_bot
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.fakes.socket_mode import FakeSocketMode, events_api_payload, slash_command_payload
from tests.harness import harness_settings

# Slack re-sends what is not acknowledged within 3 s; "well within" leaves room for a busy CI.
WELL_WITHIN = 1.0


@pytest.fixture
def server(slack: FakeSlackAPI) -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        fake.serve_through(slack)
        yield fake


@pytest.fixture
def runtime(slack: FakeSlackAPI, model: FakeOpenAI, db_url: str) -> Iterator[Runtime]:
    runtime = create_runtime(harness_settings(slack, model, db_url, slack_app_token="xapp-1-t"))
    runtime.start()
    yield runtime
    runtime.stop(grace=2)
    runtime.close()


@pytest.fixture
def connected(runtime: Runtime, server: FakeSocketMode, slack: FakeSlackAPI) -> Iterator[None]:
    socket_mode = SocketMode(
        runtime.app,
        app_token="xapp-1-t",
        api_url=slack.base_url,
        executor=runtime.executor,
        metrics=runtime.metrics,
    )
    socket_mode.connect()
    server.wait_connection(0)
    yield
    socket_mode.close()


def envelopes(server: FakeSocketMode, slack: FakeSlackAPI, *, at: int) -> list[float]:
    """Send two events and two slash commands on connection `at`; their ack times."""
    connection = server.connections[at - 1]
    command = slash_command_payload("/usage", "help") | {"response_url": slack.response_url()}
    sent = [
        server.send("events_api", events_api_payload("one", ts=f"{at}.000001"), to=connection),
        server.send("slash_commands", command, to=connection),
        server.send("events_api", events_api_payload("two", ts=f"{at}.000002"), to=connection),
        server.send("slash_commands", command | {"trigger_id": f"t-{at}"}, to=connection),
    ]
    return [server.wait_acked(envelope, timeout=10) for envelope in sent]


@pytest.mark.usefixtures("connected")
def test_envelopes_after_a_refresh_are_acknowledged_at_once(
    server: FakeSocketMode, slack: FakeSlackAPI, runtime: Runtime
) -> None:
    for refresh in (1, 2):
        server.refresh()
        new = server.wait_connection(refresh, timeout=5)
        acks = envelopes(server, slack, at=new.number)
        assert max(acks) < WELL_WITHIN, acks  # Bolt's default client took 3.0 s here

    assert len(server.connections) == 3
    samples = runtime.metrics.registry
    acked = samples.get_sample_value(
        "switchboard_slack_acks_total", {"kind": "events_api", "status": "200"}
    )
    assert acked == 4


@pytest.mark.usefixtures("connected")
def test_a_silently_dropped_connection_is_replaced_within_ten_seconds(
    server: FakeSocketMode, slack: FakeSlackAPI
) -> None:
    dropped = server.current()
    server.go_silent(dropped)

    new = server.wait_connection(dropped.number, timeout=10)  # Bolt's default took ~45-56 s
    assert new.opened_at - dropped.opened_at > 0
    assert max(envelopes(server, slack, at=new.number)) < WELL_WITHIN


@pytest.mark.usefixtures("connected")
def test_an_envelope_cut_off_mid_frame_is_acknowledged_when_sent_again(
    server: FakeSocketMode, slack: FakeSlackAPI
) -> None:
    before = server.current()
    lost = server.cut_mid_envelope("events_api", events_api_payload("cut", ts="9.000001"))

    new = server.wait_connection(before.number, timeout=10)
    again = server.resend(lost, to=new)
    assert server.wait_acked(again, timeout=10) < WELL_WITHIN
    assert lost.acked_at is None
    assert again.acked_at is not None and again.acked_at - lost.sent_at < 10


def test_python_m_bot_socket_serves_its_metrics_on_metrics_port(
    server: FakeSocketMode, slack: FakeSlackAPI, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    process = _start_bot({
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_APP_TOKEN": "xapp-test",
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        "METRICS_PORT": str(port),
    }, "socket")  # fmt: skip
    try:
        connection = server.wait_connection(0, timeout=60)
        envelope = server.send("events_api", events_api_payload(), to=connection)
        assert server.wait_acked(envelope) < WELL_WITHIN
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert 'switchboard_slack_acks_total{kind="events_api",status="200"} 1.0' in text
    assert "# TYPE gen_ai_client_token_usage histogram" in text
