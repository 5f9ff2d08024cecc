"""The Slack Web API client, counting the calls Slack refuses or that get no answer."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.metrics.recorder import Metrics


class MeteredWebClient(WebClient):
    """slack_sdk's `WebClient`; every failed call is counted by method and error.

    Every Web API method of the client (and `chat_stream`'s helper) goes through `api_call`,
    and slack_sdk raises `SlackApiError` there for an `ok: false` answer. Retry handlers are
    not the place: slack_sdk asks them only about HTTP errors and exceptions, never about
    `ok: false` answers, which are most of Slack's errors.
    """

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        """Call `api_method`; count the failure, if it fails, and raise it on."""
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            self.metrics.slack_api_error(method=api_method, error=str(error or "unknown"))
            raise
        except Exception as exc:  # no answer: a timeout, a refused connection
            self.metrics.slack_api_error(method=api_method, error=type(exc).__name__)
            raise
