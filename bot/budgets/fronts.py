"""The two front ends of the budget command: how each writes it in its messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Front:
    """How one front end writes the budget grammar: the slash command, or the shell's command."""

    command: str  # what the words follow
    channel: str  # a channel as typed there
    user: str  # a member as typed there
    who: str  # who may change budgets, said before "change them"
    name_a_channel: str  # how to give a channel this front end did not recognise

    @property
    def syntax(self) -> str:
        """Every form of the command, as examples."""
        c = self.command
        return (
            f"`{c}` shows the limits; {self.who}change them with `{c} set workspace 500`, "
            f"`{c} set channel {self.channel} 50`, `{c} set user {self.user} 20`, "
            f"`{c} set default-user 10` (USD a month; add `2M tokens` for a token limit) and "
            f"`{c} clear user {self.user}`."
        )


SLASH = Front(
    command="/usage budget",
    channel="#support",
    user="@ana",
    who="admins ",
    name_a_channel="pick it from the list Slack offers as you type #, so that it becomes a link",
)
# The shell has no Slack to resolve names: channels and members are given by id.
SHELL = Front(
    command="python -m bot budget --team T012ABCDEF",
    channel="C012ABCDEF",
    user="U012ABCDEF",
    who="",
    name_a_channel="give its channel id, such as C012ABCDEF (in Slack: the channel's name → "
    "About, at the bottom)",
)
