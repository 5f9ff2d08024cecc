"""The one place the application is wired: settings in, a Bolt app and its services out."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import handlers
from bot.agent.prompts import SuggestedPrompts
from bot.conversations.service import ConversationService
from bot.feedback.service import FeedbackService
from bot.home.service import HomeService
from bot.llm.openai_chat import OpenAIChatModel, build_client, provider_name
from bot.llm.port import ChatModel
from bot.members.directory import ProfileSource, UserDirectory
from bot.model_choice.chain import Catalogue, ModelChooser
from bot.model_choice.commands import ModelCommandService
from bot.shell import migrations
from bot.shell.services import Services
from bot.shell.settings import Settings
from bot.usage.reports import UsageService
from db.engine import make_engine, make_sessionmaker
from handlers.profiles import SlackProfiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """A built application and what it holds open."""

    app: App
    services: Services
    engine: Engine
    executor: ThreadPoolExecutor

    def close(self) -> None:
        """Let running turns finish, then release the database."""
        self.executor.shutdown(wait=True)
        self.engine.dispose()


def create_runtime(settings: Settings, *, executor: ThreadPoolExecutor | None = None) -> Runtime:
    """Build everything from the settings (migrating first unless AUTO_MIGRATE=false)."""
    settings.require("SLACK_BOT_TOKEN", "OPENAI_API_KEY")
    if settings.auto_migrate:
        migrations.upgrade(settings.database_url)
    engine = make_engine(settings.database_url, pool_size=min(settings.max_concurrent_turns, 32))
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    chat_model = OpenAIChatModel(
        build_client(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=settings.model_timeout,
            max_retries=settings.model_max_retries,
        ),
        provider=provider_name(settings.openai_base_url),
    )
    services = build_services(
        settings,
        sessions=make_sessionmaker(engine),
        chat_model=chat_model,
        profiles=SlackProfiles(client),
    )
    # Bolt's own executor has 5 threads: one slow model would make everyone else wait.
    executor = executor or ThreadPoolExecutor(
        max_workers=settings.max_concurrent_turns, thread_name_prefix="switchboard-turn"
    )
    app = build_app(settings, services, client=client, executor=executor)
    return Runtime(app=app, services=services, engine=engine, executor=executor)


def build_app(
    settings: Settings, services: Services, *, client: WebClient, executor: ThreadPoolExecutor
) -> App:
    """The Bolt app with every listener registered."""
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        listener_executor=executor,
        # Acknowledge at once and answer afterwards: Slack re-sends what is not acked in 3 s.
        process_before_response=False,
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
) -> Services:
    """Wire the services together."""
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
    )
    usage = UsageService(sessions, users)
    return Services(
        settings=settings,
        sessions=sessions,
        users=users,
        models=models,
        model_commands=ModelCommandService(sessions, users=users, models=models),
        conversations=conversations,
        usage=usage,
        # Issue 12: the agent surface.
        prompts=SuggestedPrompts(settings.suggested_prompts, default_model=settings.default_model),
        feedback=FeedbackService(sessions),
        home=HomeService(sessions, users=users, models=models, usage=usage),
    )
