"""/usage: the command's text to `UsageService`, the report back as Block Kit or a CSV file."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.budgets.commands import BudgetError
from bot.shell.services import Services
from bot.usage.reports import UsageReport, report_csv
from bot.usage.request import UsageError, UsageHelp
from handlers.lazy import after_ack
from handlers.slash_replies import Reply, problem, send
from handlers.usage_blocks import report_message

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Register /usage."""
    usage = services.usage
    budgets = services.budgets

    def handle_usage_command(
        command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
    ) -> None:
        team_id = command.get("team_id") or context.team_id or ""
        user_id = command["user_id"]
        words = (command.get("text") or "").split()
        if words and words[0].lower() in ("budget", "budgets"):
            try:
                send(respond, Reply(budgets.command(team_id, user_id, words[1:])))
            except BudgetError as exc:
                send(respond, problem(exc))
            return
        try:
            report = usage.report_for(team_id, user_id, text=command.get("text") or "")
        except UsageHelp as answer:
            send(respond, Reply(str(answer)))
            return
        except UsageError as exc:
            send(respond, problem(exc))
            return
        if report.csv:
            send(respond, _send_csv(client, user_id, report))
            return
        send(respond, report_message(report))

    # An empty ack at once: the report, and the admin check behind it, may take a while.
    after_ack(app.command("/usage"), handle_usage_command)


def csv_filename(report: UsageReport) -> str:
    """`usage-T123-2026-10-25-to-2026-11-23.csv`."""
    first, last = report.period.days()[0], report.period.days()[-1]
    return f"usage-{report.team_id or 'all'}-{first}-to-{last}.csv"


def _send_csv(client: WebClient, user_id: str, report: UsageReport) -> Reply:
    filename = csv_filename(report)
    try:
        dm = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            channel=dm,
            content=report_csv(report),
            filename=filename,
            title=f"Usage, {report.period.label}",
        )
    except SlackApiError as exc:
        log.warning("/usage csv upload failed: %s", exc.response.get("error"))
        return Reply(
            ":warning: I could not send the CSV to your DMs "
            f"({exc.response.get('error')}). Try again in a moment, or use `/usage` without csv."
        )
    return Reply(f"I sent `{filename}` to your DMs with me ({report.period.label}).")
