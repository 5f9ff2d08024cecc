"""The model port: the chat-model protocol, its adapter on the `openai` client, and pricing."""
