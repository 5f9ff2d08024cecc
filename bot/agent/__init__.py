"""The bot's agent surface in Slack: what it suggests when someone opens its Messages tab."""
