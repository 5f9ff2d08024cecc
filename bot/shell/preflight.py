"""Do Slack and the model endpoint take our credentials? Asked at start and by `check`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.error import URLError

import openai
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.llm.openai_chat import build_client
from bot.shell.settings import Settings, SettingsError

# Long enough for a slow network, short enough that a wrong URL does not stall the start.
TIMEOUT = 10

_TOKEN_HINTS = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-…) again from the app's "
    "OAuth & Permissions page (reinstall the app if it was revoked).",
    "SLACK_APP_TOKEN": "generate an app-level token (xapp-…) with connections:write on the "
    "app's Basic Information page.",
}


class Problem(NamedTuple):
    """Why a call failed: Slack's error code, or why Slack could not be reached."""

    reason: str
    unreachable: bool


def slack_bot_token_problem(settings: Settings) -> Problem | None:
    """`auth.test` with SLACK_BOT_TOKEN; None when Slack accepts it."""
    client = _slack_client(settings, token=settings.slack_bot_token)
    return _slack_problem(client.auth_test)


def slack_app_token_problem(settings: Settings) -> Problem | None:
    """`apps.connections.open` with SLACK_APP_TOKEN, the call Socket Mode starts with."""
    client = _slack_client(settings)
    # Unset, the call goes without a token and Slack answers `not_authed`, as it should.
    token = settings.slack_app_token or ""
    return _slack_problem(lambda: client.apps_connections_open(app_token=token))


def _slack_client(settings: Settings, *, token: str | None = None) -> WebClient:
    # slack_sdk logs a failed call at ERROR before raising it; our one line says it already.
    quiet = logging.getLogger(f"{__name__}.slack_sdk")
    quiet.setLevel(logging.CRITICAL)
    return WebClient(token=token, base_url=settings.slack_api_url, timeout=TIMEOUT, logger=quiet)


def require_bot_token(settings: Settings) -> None:
    """Raise a one-line `SettingsError` unless Slack accepts SLACK_BOT_TOKEN."""
    _require("SLACK_BOT_TOKEN", slack_bot_token_problem(settings), settings)


def require_app_token(settings: Settings) -> None:
    """Raise a one-line `SettingsError` unless Slack accepts SLACK_APP_TOKEN."""
    _require("SLACK_APP_TOKEN", slack_app_token_problem(settings), settings)


def _require(name: str, problem: Problem | None, settings: Settings) -> None:
    # Unreachable is not a token problem, but the bot cannot work without Slack: stop with one
    # line and let the supervisor retry, rather than accept events no reply can be posted for.
    if problem is not None:
        raise SettingsError(explain(name, problem, settings))


def explain(name: str, problem: Problem, settings: Settings) -> str:
    """What `problem` with token `name` means and what to do, as start-up and `check` say it."""
    if problem.unreachable:
        return (
            f"Slack did not answer at {settings.slack_api_url} ({problem.reason}): "
            "check SLACK_API_URL and the network."
        )
    return f"{name} was refused by Slack ({problem.reason}): {_TOKEN_HINTS[name]}"


def _slack_problem(call: Callable[[], Any]) -> Problem | None:
    try:
        call()
    except SlackApiError as exc:
        return Problem(str(exc.response.get("error") or f"HTTP {exc.response.status_code}"), False)
    except URLError as exc:
        return Problem(_first_line(exc.reason if isinstance(exc.reason, Exception) else exc), True)
    except (SlackClientError, OSError) as exc:
        return Problem(_first_line(exc), True)
    return None


def model_endpoint_models(settings: Settings) -> list[str]:
    """The model ids `GET /models` lists; raises `RuntimeError` with the reason otherwise."""
    client = build_client(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=TIMEOUT,
        max_retries=0,
    )
    try:
        return [model.id for model in client.models.list()]
    except openai.APIStatusError as exc:
        raise RuntimeError(f"HTTP {exc.status_code} from {client.base_url}models") from exc
    except openai.APIConnectionError as exc:
        reason = _first_line(exc.__cause__ or exc)
        raise RuntimeError(f"cannot reach {client.base_url}models: {reason}") from exc
    except openai.OpenAIError as exc:
        raise RuntimeError(_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
