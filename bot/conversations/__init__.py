"""Conversations: the turn service, and the context each turn sends to the model."""
