"""Members: the `users` row of each Slack member, with names and admin flags from Slack."""
