"""Loopback HTTP fakes of the Slack Web API and the OpenAI Chat Completions API."""

from .openai_api import DEFAULT, FakeOpenAI, FakeReply
from .slack_api import FakeSlackAPI, SlackCall, decode_json_value

__all__ = ["DEFAULT", "FakeOpenAI", "FakeReply", "FakeSlackAPI", "SlackCall", "decode_json_value"]
