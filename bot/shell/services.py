"""The services the handlers call, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import ConversationService
from bot.llm import ChatModel
from bot.model_choice import Catalogue, ModelChooser
from bot.model_commands import ModelCommandService
from bot.settings import Settings
from bot.usage import UsageService
from bot.users import ProfileSource, UserDirectory


@dataclass(frozen=True)
class Services:
    """Everything a handler may call."""

    settings: Settings
    sessions: sessionmaker[Session]
    users: UserDirectory
    models: ModelChooser
    model_commands: ModelCommandService
    conversations: ConversationService
    usage: UsageService


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
    return Services(
        settings=settings,
        sessions=sessions,
        users=users,
        models=models,
        model_commands=ModelCommandService(sessions, users=users, models=models),
        conversations=conversations,
        usage=UsageService(sessions, users),
    )
