"""Notices and profiles go to the Slack workspace they are about, through its own client."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.notices import SlackNotices
from bot.slack.profiles import SlackProfiles
from tests.fakes import FakeSlackAPI


@pytest.fixture
def clients(slack: FakeSlackAPI) -> dict[str, WebClient]:
    """One client per workspace, told apart by their tokens."""
    return {team: WebClient(token=f"xoxb-{team}", base_url=slack.base_url) for team in ("T1", "T2")}


def test_a_notice_goes_to_the_members_dm_in_their_workspace(
    slack: FakeSlackAPI, clients: dict[str, WebClient]
) -> None:
    SlackNotices(clients.__getitem__).notify("T2", "U7", "80 % of your budget is spent.")
    [post] = slack.calls_to("chat.postMessage")
    assert (post.token, post.args["channel"]) == ("xoxb-T2", "U7")
    assert post.args["text"] == "80 % of your budget is spent."


def test_a_refused_notice_raises(slack: FakeSlackAPI, clients: dict[str, WebClient]) -> None:
    slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        SlackNotices(clients.__getitem__).notify("T1", "U7", "hello")


def test_a_profile_is_read_in_the_members_workspace(
    slack: FakeSlackAPI, clients: dict[str, WebClient]
) -> None:
    slack.add_user("U7", name="ada", real_name="Ada Lovelace", email="ada@x.org", is_owner=True)
    profile = SlackProfiles(clients.__getitem__).fetch("T1", "U7")
    assert profile is not None
    assert (profile.username, profile.full_name, profile.email) == (
        "ada",
        "Ada Lovelace",
        "ada@x.org",
    )
    assert profile.is_admin and profile.is_active
    assert [call.token for call in slack.calls_to("users.info")] == ["xoxb-T1"]


def test_a_profile_slack_will_not_give_is_none(
    slack: FakeSlackAPI, clients: dict[str, WebClient]
) -> None:
    slack.missing_users.add("U404")
    assert SlackProfiles(clients.__getitem__).fetch("T2", "U404") is None
