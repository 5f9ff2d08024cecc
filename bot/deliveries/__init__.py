"""Deliveries: what makes each request Slack sends (or someone replays) run once."""
