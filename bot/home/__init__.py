"""The App Home tab: a person's model in DMs, their choices and usage; the workspace for admins."""
