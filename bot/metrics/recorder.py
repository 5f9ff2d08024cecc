"""The metrics one app records, in its own registry.

GenAI client metrics follow OpenTelemetry's semantic conventions (gen-ai-metrics, 2026): the
dotted names become Prometheus names (`gen_ai.client.token.usage` → `gen_ai_client_token_usage`,
seconds get their `_seconds` suffix), attributes become labels, and the histograms use the
conventions' explicit bucket boundaries. The rest are Switchboard's own (`switchboard_…`).

Tool calls (MCP tools) are timed as OpenTelemetry's `gen_ai.execute_tool.duration`
(`gen_ai_execute_tool_duration_seconds`, labels `gen_ai_tool_name` and `error_type`, the same
buckets as the operation duration), by `tool_call` when each call ends.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

# OpenTelemetry's ExplicitBucketBoundaries for gen_ai.client.token.usage ({token}) ...
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
# ... and for gen_ai.client.operation.duration and .time_to_first_chunk (seconds).
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
# Slack wants an acknowledgement within 3 s: the buckets are fine below it and stop just past.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 10.0)

TokenType = Literal["input", "output"]
_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")


class Metrics:
    """Every metric of one app; each method records one thing that happened."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Input and output tokens of each model call, as the endpoint reported them.",
            [*_GENAI, "gen_ai_response_model", "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration",
            "Model calls, from the request to the end of the stream (error_type when failed).",
            [*_GENAI, "gen_ai_response_model", "error_type"],
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk",
            "Streamed model calls, from the request to the first text received.",
            [*_GENAI, "gen_ai_response_model"],
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tool_duration = Histogram(
            "gen_ai_execute_tool_duration",
            "Tool calls (MCP), from the request to the result (error_type when it failed).",
            ["gen_ai_tool_name", "error_type"],
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.turns = Counter(
            "switchboard_turns",
            "Turns ended here, by outcome (answered, failed, refused, expired, model_set, lost, "
            "crashed).",
            ["outcome"],
            registry=r,
        )
        self.turns_queued = Gauge(
            "switchboard_turns_queued",
            "Turns stored and waiting for a worker, in the whole database.",
            registry=r,
        )
        self.turns_running = Gauge(
            "switchboard_turns_running", "Turns this process is answering now.", registry=r
        )
        self.takeovers = Counter(
            "switchboard_turn_takeovers",
            "Turns this process claimed after an earlier attempt left them unfinished (the "
            "process that held them crashed or lost its lease, or gave them back).",
            registry=r,
        )
        self.cost = Counter(
            "switchboard_cost_usd",
            "Cost in USD of the recorded answers, by the model used and the workspace.",
            ["model", "team_id"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "switchboard_budget_refusals",
            "Turns not sent to the model because a budget limit had no room, by the limit's "
            "scope (workspace, channel, user, default_user).",
            ["team_id", "scope"],
            registry=r,
        )
        self.slack_api_errors = Counter(
            "switchboard_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error (or the exception's "
            "name when no answer came).",
            ["method", "error"],
            registry=r,
        )
        self.acks = Counter(
            "switchboard_slack_acks",
            "Requests from Slack answered, by kind (events_api, slash_commands, interactive, "
            "…) and the app's status (in Socket Mode only 200 is acknowledged).",
            ["kind", "status"],
            registry=r,
        )
        self.ack_duration = Histogram(
            "switchboard_slack_ack_duration",
            "Time from a request's arrival to its acknowledgement, by kind.",
            ["kind"],
            unit="seconds",
            buckets=ACK_BUCKETS,
            registry=r,
        )

    # --- GenAI client ---------------------------------------------------------------------
    def model_call(
        self,
        *,
        provider: str,
        request_model: str,
        response_model: str,
        seconds: float,
        first_chunk: float | None,
        tokens: dict[TokenType, int] | None,
        error_type: str = "",
    ) -> None:
        """One chat completion; `tokens` only when the endpoint reported them."""
        genai = ("chat", provider, request_model, response_model)
        self.operation_duration.labels(*genai, error_type).observe(seconds)
        if first_chunk is not None:
            self.time_to_first_chunk.labels(*genai).observe(first_chunk)
        for token_type, count in (tokens or {}).items():
            self.token_usage.labels(*genai, token_type).observe(count)

    def tool_call(self, *, tool: str, seconds: float, error_type: str = "") -> None:
        """One tool call; `error_type` is `timeout` or `error` when it failed."""
        self.tool_duration.labels(tool, error_type).observe(seconds)

    # --- turns ----------------------------------------------------------------------------
    def turn_ended(self, outcome: str) -> None:
        """A turn this process ran ended with `outcome`."""
        self.turns.labels(outcome).inc()

    def taken_over(self, count: int = 1) -> None:
        """This process claimed `count` turns an earlier attempt had left unfinished."""
        if count:
            self.takeovers.inc(count)

    def watch_turns(self, *, queued: Callable[[], float], running: Callable[[], float]) -> None:
        """Read the queued and running turns at each scrape."""
        self.turns_queued.set_function(queued)
        self.turns_running.set_function(running)

    def answer_cost(self, *, model: str, team_id: str, usd: Decimal | None) -> None:
        """A recorded answer's cost (nothing for an unpriced model)."""
        if usd:
            self.cost.labels(model, team_id).inc(float(usd))

    def budget_refused(self, *, team_id: str, scope: str) -> None:
        """A turn refused for want of budget."""
        self.budget_refusals.labels(team_id, scope).inc()

    # --- Slack ----------------------------------------------------------------------------
    def slack_api_error(self, *, method: str, error: str) -> None:
        """A Slack Web API call that failed."""
        self.slack_api_errors.labels(method, error).inc()

    def acknowledged(self, *, kind: str, status: int, seconds: float) -> None:
        """A request from Slack acknowledged `seconds` after it arrived."""
        self.acks.labels(kind, str(status)).inc()
        self.ack_duration.labels(kind).observe(seconds)

    # --- exposition -----------------------------------------------------------------------
    def wsgi_app(self) -> Callable[..., object]:
        """A WSGI app answering with this registry in Prometheus' text format."""
        return make_wsgi_app(self.registry)


def request_kind(body: dict[str, object]) -> str:
    """What Slack sent, named as Socket Mode names its envelopes."""
    if "command" in body:
        return "slash_commands"
    kind = body.get("type")
    if kind == "event_callback":
        return "events_api"
    if kind in ("block_actions", "view_submission", "view_closed", "shortcut", "message_action"):
        return "interactive"
    return str(kind) if kind in ("url_verification", "app_rate_limited") else "other"
