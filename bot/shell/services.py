"""The services the handlers call: one container, filled by `bot.shell.wiring`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.commands import BudgetService
from bot.conversations.pipeline import TurnPipeline
from bot.conversations.retention import RetentionService
from bot.conversations.service import ConversationService
from bot.deliveries.receipts import CommandReceipts
from bot.feedback.service import FeedbackService
from bot.files.service import FileService
from bot.home.prompts import SuggestedPrompts
from bot.home.service import HomeService
from bot.installs.store import DatabaseInstallationStore
from bot.members.directory import UserDirectory
from bot.model_choice.chain import ModelChooser
from bot.model_choice.commands import ModelCommandService
from bot.shell.settings import Settings
from bot.usage.reports import UsageService


@dataclass(frozen=True)
class Services:
    """Everything a handler may call."""

    settings: Settings
    sessions: sessionmaker[Session]
    users: UserDirectory
    models: ModelChooser
    model_commands: ModelCommandService
    conversations: ConversationService
    turns: TurnPipeline
    usage: UsageService
    budgets: BudgetService
    command_receipts: CommandReceipts
    # The agent surface: suggested prompts, feedback on answers, the Home tab.
    prompts: SuggestedPrompts
    feedback: FeedbackService
    home: HomeService
    retention: RetentionService
    # Installing into many workspaces (SLACK_CLIENT_ID set); None with one bot token.
    installs: DatabaseInstallationStore | None = None
    # Files people share (None in service tests that build no downloader).
    files: FileService | None = None
