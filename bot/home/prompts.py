"""The prompts suggested to someone who opens the bot's Messages tab."""

from __future__ import annotations

from dataclasses import dataclass

# Shown above the prompts: how to choose the model is not something a prompt can show.
TITLE = "Ask me anything. /model shows or sets who answers; [NAME] question asks NAME once."


@dataclass(frozen=True)
class Prompt:
    """One suggested prompt: the button's title and the message it sends."""

    title: str
    message: str


class SuggestedPrompts:
    """The operator's SUGGESTED_PROMPTS, or defaults that show what the bot can do."""

    def __init__(self, configured: tuple[tuple[str, str], ...], *, default_model: str) -> None:
        self._configured = configured
        self._default_model = default_model

    @property
    def title(self) -> str:
        """The line above the prompts."""
        return TITLE

    def prompts(self) -> list[Prompt]:
        """At most four prompts."""
        if self._configured:
            return [Prompt(title, message) for title, message in self._configured]
        return [
            Prompt(
                "Explain something",
                "Explain how public-key cryptography works, in three short paragraphs.",
            ),
            Prompt(
                "Draft a message",
                "Draft a short, friendly Slack message inviting my team to a kick-off on Monday.",
            ),
            Prompt("Brainstorm", "Give me ten ideas for a team offsite, one line each."),
            Prompt(
                "Ask one model",
                f"[{self._default_model}] In two sentences: what are you best at?",
            ),
        ]
