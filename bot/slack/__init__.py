"""Slack Web API adapters: what the services write to Slack."""
