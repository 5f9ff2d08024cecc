"""The one place the application is wired: settings in, a Bolt app and its services out."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.oauth.token_rotation import TokenRotator
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import handlers
from bot.budgets.commands import BudgetService
from bot.budgets.gate import BudgetGate, Notifier
from bot.conversations.history import ThreadSource
from bot.conversations.pipeline import TurnPipeline
from bot.conversations.retention import DailyPurge, RetentionService
from bot.conversations.service import ConversationService, SinkFactory
from bot.conversations.tooling import Toolbox, ToolLimits, ToolRunner
from bot.deliveries.receipts import CommandReceipts
from bot.feedback.service import FeedbackService
from bot.files.download import FileDownloader
from bot.files.service import FileService
from bot.home.prompts import SuggestedPrompts
from bot.home.service import HomeService
from bot.installs.clients import WorkspaceClients
from bot.installs.crypto import TokenCipher
from bot.installs.oauth import ROTATE_MINUTES, build_oauth
from bot.installs.store import DatabaseInstallationStore
from bot.llm.deadlines import Deadlines
from bot.llm.openai_chat import OpenAIChatModel, build_client, provider_name
from bot.llm.port import ChatModel
from bot.members.directory import ProfileSource, UserDirectory
from bot.metrics.chat_model import MeteredChatModel
from bot.metrics.recorder import Metrics
from bot.model_choice.chain import Catalogue, ModelChooser
from bot.model_choice.commands import ModelCommandService
from bot.shell import migrations, preflight
from bot.shell.services import Services
from bot.shell.settings import Settings
from bot.shell.slack_client import MeteredWebClient
from bot.slack.files import SlackFileAccess
from bot.slack.notices import SlackNotices
from bot.slack.profiles import SlackProfiles
from bot.slack.reply import SlackReplies
from bot.slack.threads import SlackThreads
from bot.tools.results import Outcome, ToolResult
from bot.tools.servers import ToolServers
from bot.usage.reports import UsageService
from db import turns as turn_queries
from db.engine import make_engine, make_sessionmaker

log = logging.getLogger(__name__)

# Seconds for one Slack Web API call; slack_sdk's default (30 s) would hold a turn too long.
SLACK_TIMEOUT = 10


@dataclass(frozen=True)
class Runtime:
    """A built application and what it holds open."""

    app: App
    services: Services
    engine: Engine
    executor: ThreadPoolExecutor  # Bolt's: acknowledgements, and command work after them
    replies: SlackReplies
    purges: DailyPurge | None = None  # when RETENTION_DAYS is set
    metrics: Metrics = field(default_factory=Metrics)
    tool_servers: ToolServers | None = None  # when MCP_SERVERS is set

    def start(self) -> None:
        """Start answering stored turns (and purging old content, when set to); open the MCP
        servers' sessions in the background (a server that is down is retried there)."""
        if self.tool_servers is not None:
            self.tool_servers.start()
        self.services.turns.start()
        if self.purges is not None:
            self.purges.start()

    def stop(self, grace: float) -> None:
        """Stop answering: turns running now get `grace` seconds, the rest are given back."""
        if self.purges is not None:
            self.purges.stop()
        self.services.turns.stop(grace)

    def close(self) -> None:
        """Release threads and the database (after `stop`)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.replies.close()
        if self.services.files is not None:
            self.services.files.close()
        if self.tool_servers is not None:
            self.tool_servers.close()
        self.engine.dispose()


class BoundedRateLimitRetries(RateLimitErrorRetryHandler):
    """Waits out Slack's rate limits only when `Retry-After` is short.

    A long wait would hold a turn (and the person) for it: a call that cannot be retried soon
    fails, and the turn records why.
    """

    def __init__(self, *, max_retry_count: int = 2, max_wait: float = 5.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        headers = {key.lower(): value for key, value in response.headers.items()}
        retry_after = headers.get("retry-after") or ["1"]
        try:
            wait = float(retry_after[0] if isinstance(retry_after, list) else retry_after)
        except ValueError:
            return False
        return wait <= self.max_wait


def create_runtime(
    settings: Settings, *, executor: ThreadPoolExecutor | None = None, answer: bool = True
) -> Runtime:
    """Build everything from the settings (migrating first unless AUTO_MIGRATE=false).

    With `answer` false the runtime only stores what arrives (`serve --accept-only`).
    """
    settings.require_slack_credentials("OPENAI_API_KEY")
    if not settings.oauth:
        preflight.require_bot_token(settings)
    if settings.auto_migrate:
        migrations.upgrade(settings.database_url)
    # Turn workers and HTTP threads hold a connection only for a short transaction each, never
    # while the model writes: 12 (and 12 more in a burst) serve hundreds of turns, and four
    # processes fit in PostgreSQL's default 100 connections (64 a process did not).
    engine = make_engine(
        settings.database_url,
        pool_size=min(settings.max_concurrent_turns + settings.http_threads, 12),
        query_timeout=settings.database_timeout,
    )
    metrics = Metrics()

    def make_client(token: str | None) -> WebClient:
        client = MeteredWebClient(
            token=token, base_url=settings.slack_api_url, timeout=SLACK_TIMEOUT, metrics=metrics
        )
        client.retry_handlers.append(BoundedRateLimitRetries())
        return client

    # With OAuth the app's client has no token: Bolt gives each request its workspace's, and
    # `client_for` gives the turn workers theirs.
    client = make_client(None if settings.oauth else settings.slack_bot_token)
    sessions = make_sessionmaker(engine)
    installs, client_for = _workspace_clients(settings, sessions, client, make_client)
    inner_model = OpenAIChatModel(
        build_client(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            max_retries=settings.model_max_retries,
        ),
        provider=settings.model_provider or provider_name(settings.openai_base_url),
        deadlines=Deadlines(
            first_token=settings.model_first_token_timeout,
            idle=settings.model_idle_timeout,
            total=settings.model_total_timeout,
        ),
    )
    chat_model = MeteredChatModel(inner_model, metrics)
    replies = SlackReplies(client_for)
    slack_files = SlackFileAccess(client_for)
    downloader = FileDownloader(
        token_for=slack_files.token,
        max_bytes=settings.max_file_bytes,
        api_url=settings.slack_api_url,
    )
    tool_servers = ToolServers(settings.mcp_servers) if settings.mcp_servers and answer else None
    services = build_services(
        settings,
        sessions=sessions,
        chat_model=chat_model,
        profiles=SlackProfiles(client_for),
        threads=SlackThreads(client_for),
        replies=replies,
        notifier=SlackNotices(client_for),
        answer=answer,
        metrics=metrics,
        installs=installs,
        files=FileService(sessions, downloader, describe=slack_files.describe),
        toolbox=tool_servers,
    )
    # Bolt's executor runs acknowledgements and the work of commands and buttons after them;
    # turns run on the pipeline's own workers, so a slow model never makes a command wait.
    executor = executor or ThreadPoolExecutor(
        max_workers=settings.http_threads, thread_name_prefix="switchboard-listener"
    )
    app = build_app(settings, services, client=client, executor=executor)
    purges = None
    if settings.retention_days is not None:
        purges = DailyPurge(services.retention, timedelta(days=settings.retention_days))
    return Runtime(
        app=app,
        services=services,
        engine=engine,
        executor=executor,
        replies=replies,
        purges=purges,
        metrics=metrics,
        tool_servers=tool_servers,
    )


def _workspace_clients(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: WebClient,
    make_client: Callable[[str | None], WebClient],
) -> tuple[DatabaseInstallationStore | None, Callable[[str], WebClient]]:
    """The installation store (OAuth only) and `client_for`: a workspace's id -> its client."""
    if not settings.oauth:
        return None, lambda _team_id: client
    assert settings.slack_client_id and settings.slack_client_secret  # required above
    store = DatabaseInstallationStore(
        sessions, client_id=settings.slack_client_id, cipher=TokenCipher(settings.encryption_key)
    )
    if len(settings.encryption_key) > 1:
        # A key rotation: re-encrypt with the new key, so that the old ones can be dropped.
        log.info("re-encrypted the tokens of %d installations", store.reencrypt())
    rotator = TokenRotator(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        client=client,
    )
    return store, WorkspaceClients(
        store, make_client=make_client, rotator=rotator, rotate_minutes=ROTATE_MINUTES
    )


def build_app(
    settings: Settings, services: Services, *, client: WebClient, executor: ThreadPoolExecutor
) -> App:
    """The Bolt app with every listener registered."""
    oauth = None
    if services.installs is not None:
        assert settings.slack_client_id and settings.slack_client_secret
        oauth = build_oauth(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            store=services.installs,
            sessions=services.sessions,
            client=client,
        )
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        # Many workspaces: Bolt serves /slack/install and /slack/oauth_redirect, and gives each
        # request its workspace's token and bot user id.
        oauth_settings=oauth.settings if oauth else None,
        # Bolt takes an `Authorize` object too (its type hint names only functions).
        authorize=oauth.authorize if oauth else None,  # type: ignore[arg-type]
        installation_store_bot_only=True if oauth else None,
        listener_executor=executor,
        # Listeners run before the acknowledgement: an event is acknowledged only once its
        # message is stored (Slack re-sends what is not). Commands and buttons acknowledge at
        # once and do their work afterwards in lazy listeners.
        process_before_response=True,
        logger=logging.getLogger("slack_bolt"),
    )
    handlers.register(app, services)
    return app


def build_services(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    chat_model: ChatModel,
    profiles: ProfileSource,
    replies: SinkFactory,
    notifier: Notifier | None = None,
    answer: bool = True,
    metrics: Metrics | None = None,
    installs: DatabaseInstallationStore | None = None,
    files: FileService | None = None,
    toolbox: Toolbox | None = None,
    threads: ThreadSource | None = None,
) -> Services:
    """Wire the services together."""
    metrics = metrics or Metrics()
    tools = None
    if toolbox is not None:
        limits = ToolLimits(
            max_calls=settings.max_tool_calls,
            call_timeout=settings.mcp_tool_timeout,
            turn_timeout=settings.model_total_timeout,
        )
        tools = ToolRunner(toolbox, limits, on_result=_metered(metrics))
    users = UserDirectory(sessions, profiles, admin_user_ids=settings.admin_user_ids)
    models = ModelChooser(
        Catalogue(settings.allowed_models, chat_model.list_models), settings.default_model
    )
    conversations = ConversationService(
        sessions,
        users=users,
        models=models,
        chat_model=chat_model,
        system_prompt=settings.system_prompt,
        max_context_tokens=settings.max_context_tokens,
        model_prices=settings.model_prices,
        answer_within=settings.max_turn_age_seconds,
        budgets=BudgetGate(
            sessions, notifier=notifier, admin_user_ids=settings.admin_user_ids, metrics=metrics
        ),
        metrics=metrics,
        files=files,
        tools=tools,
        threads=threads,
        retention=(
            None if settings.retention_days is None else timedelta(days=settings.retention_days)
        ),
    )
    turns = TurnPipeline(
        sessions,
        conversations,
        replies,
        workers=settings.max_concurrent_turns if answer else 0,
        lease_seconds=settings.turn_lease_seconds,
        poll_seconds=settings.turn_poll_seconds,
        metrics=metrics,
    )
    metrics.watch_turns(queued=_queued_turns(sessions), running=lambda: turns.running)
    usage = UsageService(sessions, users)
    return Services(
        settings=settings,
        sessions=sessions,
        users=users,
        models=models,
        model_commands=ModelCommandService(
            sessions, users=users, models=models, has_tools=bool(settings.mcp_servers)
        ),
        conversations=conversations,
        turns=turns,
        command_receipts=CommandReceipts(sessions),
        usage=usage,
        budgets=BudgetService(sessions, users),
        prompts=SuggestedPrompts(settings.suggested_prompts, default_model=settings.default_model),
        feedback=FeedbackService(sessions),
        home=HomeService(sessions, users=users, models=models, usage=usage),
        retention=RetentionService(sessions),
        installs=installs,
        files=files,
    )


def _metered(metrics: Metrics) -> Callable[[ToolResult], None]:
    def record(result: ToolResult) -> None:
        call = result.record
        error = "" if call.outcome is Outcome.OK else call.outcome.value
        metrics.tool_call(tool=call.tool, seconds=call.duration, error_type=error)

    return record


def _queued_turns(sessions: sessionmaker[Session]) -> Callable[[], float]:
    """Reads the queued turns at each scrape; NaN while the database does not answer."""

    def read() -> float:
        try:
            with sessions() as session:
                return turn_queries.queued(session)
        except SQLAlchemyError:
            return math.nan

    return read
