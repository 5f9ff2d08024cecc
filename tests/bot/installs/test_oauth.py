"""Installing into many workspaces: the OAuth flow, each workspace its own token, uninstalls."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import Fernet
from sqlalchemy import String, Text, select

from db.install_models import SlackInstallation, SlackOAuthState, SlackOrgTeam
from db.models import Base, Response, User
from tests.bot.installs.oauth_helpers import KEY, install, mention, oauth_settings, send_event
from tests.fakes import FakeSlackAPI
from tests.fakes.slack_oauth import FakeWorkspace
from tests.harness import SlackAppHarness

ACME = FakeWorkspace(team_id="T0ACME", bot_user_id="UACMEBOT", team_name="Acme")
GLOBEX = FakeWorkspace(team_id="T0GLOBEX", bot_user_id="UGLOBEXBOT", team_name="Globex")


def tokens_used(slack: FakeSlackAPI, method: str, channel: str) -> set[str | None]:
    """The tokens of the calls to `method` in `channel`."""
    return {
        call.token
        for call in slack.calls_to(method)
        if (call.args.get("channel") or call.args.get("channel_id")) == channel
    }


def token_of(slack: FakeSlackAPI, team_id: str) -> str:
    """The one valid token Slack issued for workspace `team_id`."""
    tokens = [t for t, w in slack.oauth.tokens().items() if w.team_id == team_id]
    assert len(tokens) == 1, tokens
    return tokens[0]


def all_text(app: SlackAppHarness) -> str:
    """Every string value in every table, for looking for a token in plain text."""
    values: list[str] = []
    with app.services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in session.execute(select(*columns)) if columns else ():
                values.extend(str(v) for v in row if v is not None)
    return "\n".join(values)


def test_the_install_flow_stores_the_tokens_encrypted(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    app = make_app(**oauth_settings())

    done = install(app, "code-acme", ACME)

    assert done.status == 200, done
    token = token_of(slack, "T0ACME")
    (access,) = slack.calls_to("oauth.v2.access")
    assert access.args["code"] == "code-acme"
    with app.services.sessions() as session:
        row = session.scalars(select(SlackInstallation)).one()
        assert (row.team_id, row.enterprise_id, row.bot_user_id) == ("T0ACME", "", "UACMEBOT")
        assert row.user_id == "UINSTALLER"
        assert row.bot_token_encrypted is not None and token not in row.bot_token_encrypted
        assert Fernet(KEY.encode()).decrypt(row.bot_token_encrypted.encode()).decode() == token
        # The state was good once.
        assert session.scalars(select(SlackOAuthState)).all() == []
    assert token not in all_text(app)


def test_a_state_is_good_once_and_only_from_the_browser_it_was_given_to(
    make_app: Callable[..., SlackAppHarness],
) -> None:
    app = make_app(**oauth_settings())
    page = app.get("/slack/install")
    cookie = page.headers["Set-Cookie"].split(";")[0]
    state = cookie.split("=", 1)[1]

    forged = app.get(f"/slack/oauth_redirect?code=c&state={state}")  # no cookie

    assert forged.status == 400
    with app.services.sessions() as session:
        assert session.scalars(select(SlackInstallation)).all() == []


def test_each_workspace_is_answered_with_its_own_token_and_bot_user(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    app = make_app(**oauth_settings())
    assert install(app, "code-acme", ACME).status == 200
    assert install(app, "code-globex", GLOBEX).status == 200
    acme, globex = token_of(slack, "T0ACME"), token_of(slack, "T0GLOBEX")

    mention(app, team="T0ACME", bot_user="UACMEBOT", channel="CACME", user="UANA")
    mention(app, team="T0GLOBEX", bot_user="UGLOBEXBOT", channel="CGLOBEX", user="UBEN")
    # Another workspace's bot user is just a person mentioned: no answer.
    mention(app, team="T0GLOBEX", bot_user="UACMEBOT", channel="CGLOBEX2", user="UBEN")
    app.wait_idle()

    assert tokens_used(slack, "chat.startStream", "CACME") == {acme}
    assert tokens_used(slack, "chat.startStream", "CGLOBEX") == {globex}
    assert tokens_used(slack, "chat.startStream", "CGLOBEX2") == set()
    users_info = {call.args["user"]: call.token for call in slack.calls_to("users.info")}
    assert users_info == {"UANA": acme, "UBEN": globex}
    with app.services.sessions() as session:
        users = {(u.team_id, u.slack_user_id) for u in session.scalars(select(User))}
        answered = {r.team_id for r in session.scalars(select(Response))}
    assert users == {("T0ACME", "UANA"), ("T0GLOBEX", "UBEN")}
    assert answered == {"T0ACME", "T0GLOBEX"}


def test_an_org_wide_install_answers_every_workspace_of_the_org(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    org = FakeWorkspace(team_id=None, enterprise_id="E0ORG", org_wide=True, bot_user_id="UORGBOT")
    app = make_app(**oauth_settings())
    assert install(app, "code-org", org).status == 200
    (token,) = slack.oauth.tokens()

    for team, channel in (("T0EAST", "CEAST"), ("T0WEST", "CWEST")):
        mention(
            app, team=team, bot_user="UORGBOT", channel=channel, enterprise="E0ORG", org_wide=True
        )
    app.wait_idle()

    with app.services.sessions() as session:
        row = session.scalars(select(SlackInstallation)).one()
        answered = {r.team_id for r in session.scalars(select(Response))}
    assert (row.enterprise_id, row.team_id, row.is_enterprise_install) == ("E0ORG", "", True)
    assert tokens_used(slack, "chat.startStream", "CEAST") == {token}
    assert tokens_used(slack, "chat.startStream", "CWEST") == {token}
    assert answered == {"T0EAST", "T0WEST"}
    with app.services.sessions() as session:
        workspaces = {(t.team_id, t.enterprise_id) for t in session.scalars(select(SlackOrgTeam))}
    assert workspaces == {("T0EAST", "E0ORG"), ("T0WEST", "E0ORG")}

    # The org's admin removes the app: Slack names one workspace, the install is the org's.
    uninstalled = {"type": "app_uninstalled", "event_ts": app.next_ts()}
    where = {"team": "T0EAST", "bot_user": "UORGBOT", "enterprise": "E0ORG", "org_wide": True}
    assert send_event(app, uninstalled, **where).status == 200

    with app.services.sessions() as session:
        assert session.scalars(select(SlackInstallation)).all() == []
        assert session.scalars(select(SlackOrgTeam)).all() == []
        assert {r.team_id for r in session.scalars(select(Response))} == {"T0EAST", "T0WEST"}


def test_uninstalling_removes_the_tokens_and_keeps_the_accounting(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    app = make_app(**oauth_settings())
    assert install(app, "code-acme", ACME).status == 200
    assert install(app, "code-globex", GLOBEX).status == 200
    mention(app, team="T0ACME", bot_user="UACMEBOT", channel="CACME")
    app.wait_idle()

    uninstalled = {"type": "app_uninstalled", "event_ts": app.next_ts()}
    result = send_event(app, uninstalled, team="T0ACME", bot_user="UACMEBOT")

    assert result.status == 200
    with app.services.sessions() as session:
        left = {row.team_id for row in session.scalars(select(SlackInstallation))}
        responses = session.scalars(select(Response)).all()
    assert left == {"T0GLOBEX"}
    assert [r.team_id for r in responses] == ["T0ACME"]


def test_revoking_the_bot_token_forgets_it(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    app = make_app(**oauth_settings())
    assert install(app, "code-acme", ACME).status == 200
    assert install(app, "code-globex", GLOBEX).status == 200

    revoked = {"type": "tokens_revoked", "tokens": {"bot": ["UGLOBEXBOT"]}}
    assert send_event(app, revoked, team="T0GLOBEX", bot_user="UGLOBEXBOT").status == 200

    with app.services.sessions() as session:
        rows = {row.team_id: row for row in session.scalars(select(SlackInstallation))}
    assert rows["T0GLOBEX"].bot_token_encrypted is None
    assert rows["T0ACME"].bot_token_encrypted is not None
    # Nothing is answered there any more; Slack's app_uninstalled that follows removes the rest.
    mention(app, team="T0GLOBEX", bot_user="UGLOBEXBOT", channel="CGLOBEX")
    app.wait_idle()
    assert tokens_used(slack, "chat.startStream", "CGLOBEX") == set()
    uninstalled = {"type": "app_uninstalled", "event_ts": app.next_ts()}
    assert send_event(app, uninstalled, team="T0GLOBEX", bot_user="UGLOBEXBOT").status == 200
    with app.services.sessions() as session:
        assert {row.team_id for row in session.scalars(select(SlackInstallation))} == {"T0ACME"}


def test_expiring_tokens_are_refreshed_and_stored_encrypted(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    # Tokens that expire within the two hours before which Bolt refreshes them.
    rotating = FakeWorkspace(team_id="T0ROT", bot_user_id="UROTBOT", expires_in=3600)
    app = make_app(**oauth_settings())
    assert install(app, "code-rot", rotating).status == 200
    (first,) = slack.oauth.tokens()

    mention(app, team="T0ROT", bot_user="UROTBOT", channel="CROT")
    app.wait_idle()

    refreshes = [
        c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    ]
    assert refreshes
    used = tokens_used(slack, "chat.startStream", "CROT")
    assert used and first not in used
    with app.services.sessions() as session:
        row = session.scalars(select(SlackInstallation)).one()
    stored = Fernet(KEY.encode()).decrypt(row.bot_token_encrypted.encode()).decode()
    assert stored != first and stored in slack.oauth.tokens()
    assert row.bot_token_expires_at is not None
    assert stored not in all_text(app)


def test_a_new_key_first_reencrypts_every_stored_token_at_start(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    first = make_app(**oauth_settings())
    assert install(first, "code-acme", ACME).status == 200
    token = token_of(slack, "T0ACME")
    first.close()
    new = Fernet.generate_key().decode()

    second = make_app(**oauth_settings(encryption_key=(new, KEY)))
    mention(second, team="T0ACME", bot_user="UACMEBOT", channel="CACME")
    second.wait_idle()

    with second.services.sessions() as session:
        row = session.scalars(select(SlackInstallation)).one()
    assert Fernet(new.encode()).decrypt(row.bot_token_encrypted.encode()).decode() == token
    assert tokens_used(slack, "chat.startStream", "CACME") == {token}
