"""Installing into many workspaces: Bolt's OAuth flow on our database, tokens encrypted.

`store.py` is slack_sdk's `InstallationStore` and `OAuthStateStore` on our tables
(`db/installations.py`); `crypto.py` encrypts tokens with ENCRYPTION_KEY; `clients.py` gives
the code that writes outside Slack's requests (turn workers, notices) each workspace's client.
Like `bot/shell/`, this package speaks slack_sdk: it is the adapter between Bolt and our
tables, not a service.
"""
