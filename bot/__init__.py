"""Switchboard: any OpenAI-compatible model in Slack threads, every token counted."""
