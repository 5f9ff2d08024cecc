"""What the model is shown: the system prompt, then as much of the thread as the budget allows.

`ContextReader` reads a turn's thread from the database (never from Slack) up to its message,
with who wrote each message, and `build_context` trims it to MAX_CONTEXT_TOKENS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.llm.port import ChatMessage
from bot.members.directory import UserDirectory
from db import queries

if TYPE_CHECKING:
    from bot.conversations.turn import TurnJob

# About four characters a token for English text, and about one a character for Chinese,
# Japanese and Korean (four a token would undercount them several times); good enough to
# budget, never used to bill except when the endpoint reports no usage at all (and then the row
# says it is an estimate).
CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD = 4
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3000-\u30ff"  # CJK symbols and punctuation, Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK Unified Ideographs extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # halfwidth and fullwidth forms
    "\U00020000-\U0003134f"  # CJK Unified Ideographs extensions B to G
)
# Runs of CJK (captured) and of anything else: every match starts where the last ended, which
# is much faster than searching for CJK characters one at a time.
_RUNS = re.compile(f"([{_CJK}]+)|[^{_CJK}]+")


def estimate_tokens(text: str) -> int:
    """A rough token count for `text`: a CJK character about one, other text four a token."""
    # Runs over the thread's history on every turn. `build_context` over 16,000 tokens of it
    # in 40 turns (measured 2026-12-04, busy 2-core machine): English 16 µs (ASCII skips the
    # scan), Chinese 64 µs, French 260 µs, English and CJK alternating every word 530 µs.
    cjk = 0 if text.isascii() else sum(map(len, _RUNS.findall(text)))
    rest = len(text) - cjk
    return max(1, cjk + (rest + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def strip_mentions(text: str, bot_user_id: str | None) -> str:
    """The text without mentions of the bot (other people's mentions are kept)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


@dataclass(frozen=True)
class Turn:
    """One message of a thread, as the context builder needs it."""

    role: str
    content: str
    author: str | None = None


def build_context(
    system_prompt: str, turns: Sequence[Turn], *, max_tokens: int
) -> list[ChatMessage]:
    """The system prompt, then the newest turns that fit in `max_tokens`, in order.

    When several people talk in one thread, each of their messages is prefixed with a name so
    the model can tell them apart. The newest turn is always kept, even over budget.
    """
    authors = {t.author for t in turns if t.role == "user" and t.author}
    named = len(authors) > 1
    budget = max_tokens - estimate_tokens(system_prompt) - _MESSAGE_OVERHEAD
    kept: list[ChatMessage] = []
    for turn in reversed(turns):
        content = f"{turn.author}: {turn.content}" if named and turn.author else turn.content
        cost = estimate_tokens(content) + _MESSAGE_OVERHEAD
        if kept and cost > budget:
            break
        budget -= cost
        kept.append({"role": turn.role, "content": content})
    kept.reverse()
    # A thread cut to fit should not open with an orphan reply.
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return [{"role": "system", "content": system_prompt}, *kept]


@dataclass(frozen=True)
class Context:
    """What one turn shows the model, and whether its message is the thread's first question."""

    messages: list[ChatMessage]
    first_question: bool

    @property
    def prompt_tokens(self) -> int:
        """The estimated tokens of the whole context."""
        return sum(estimate_tokens(m["content"]) for m in self.messages)


class ContextReader:
    """Builds each turn's context from the thread's stored history."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        users: UserDirectory,
        system_prompt: str,
        max_tokens: int,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._system_prompt = system_prompt
        self._max_tokens = max_tokens
        # Names of a thread's authors looked up at once (a few threads, shared by every turn).
        self._lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="switchboard-names")

    def for_turn(self, job: TurnJob) -> Context:
        """The thread up to the turn's message, that message as it is to be asked."""
        work = job.work
        with self._sessions() as session:
            said = queries.thread_history(
                session,
                work.conversation_id,
                upto=work.message_id,
                upto_ts=work.slack_ts or "",
            )
        names = self._names(work.team_id, {s.slack_user_id for s in said if s.slack_user_id})
        history = [
            Turn(s.role, s.content, names.get(s.slack_user_id or "", s.author)) for s in said
        ]
        if history and history[-1].role == "user":
            history[-1] = Turn("user", job.prompt, history[-1].author)
        messages = build_context(self._system_prompt, history, max_tokens=self._max_tokens)
        return Context(messages, first_question=len(history) == 1)

    def _names(self, team_id: str, slack_user_ids: set[str]) -> dict[str, str]:
        """The name of each person who wrote, read from Slack when unknown or stale (outside
        any transaction; kept a minute in memory, a quarter of an hour in the database).

        Several at once: a thread read from Slack brings authors whose names are not known
        yet, one `users.info` each. Apps posting without a bot user (their id a bot id, `B…`)
        have no profile to read: they keep the name their messages showed.
        """
        people = sorted(uid for uid in slack_user_ids if not uid.startswith("B"))
        if len(people) <= 1:
            return {uid: self._users.member(team_id, uid).name for uid in people}
        members = self._lookups.map(lambda uid: self._users.member(team_id, uid), people)
        return {uid: member.name for uid, member in zip(people, members, strict=True)}
