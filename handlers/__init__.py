"""Slack adapters: turn payloads into service calls and results into Slack messages."""
