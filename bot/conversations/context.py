"""What the model is shown: the system prompt, then as much of the thread as the budget allows.

`ContextReader` reads a turn's thread from the database (never from Slack) up to its message,
with who wrote each message, and `build_context` trims it to MAX_CONTEXT_TOKENS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.files.parts import Attachment, by_message, person_notes
from bot.files.service import FileService
from bot.llm.port import ChatMessage, ContentPart, message_text
from bot.members.directory import UserDirectory
from db import queries
from db.files import FileRow

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
    attachments: tuple[Attachment, ...] = ()

    def text(self, named: bool) -> str:
        """Its words (after its author's name when several people talk), then its files'
        text."""
        words = f"{self.author}: {self.content}" if named and self.author else self.content
        texts = [a.text() for a in self.attachments if a.image is None]
        return "\n\n".join(t for t in (words, *texts) if t)

    @property
    def image_tokens(self) -> int:
        """What its images cost, estimated from their size."""
        return sum(a.image_tokens for a in self.attachments)


# Shows an image to the model: its `data:` URL, or None when it can no longer be had.
ImageSource = Callable[[FileRow], str | None]


@dataclass(frozen=True)
class Fitted:
    """The messages that fit the budget, what the person is told about files left out or
    cut, and the tokens images cost (not in the messages' text)."""

    messages: list[ChatMessage]
    notes: list[str] = field(default_factory=list)
    image_tokens: int = 0


def build_context(
    system_prompt: str, turns: Sequence[Turn], *, max_tokens: int
) -> list[ChatMessage]:
    """The system prompt, then the newest turns that fit in `max_tokens`, in order."""
    return fit_context(system_prompt, turns, max_tokens=max_tokens).messages


def fit_context(
    system_prompt: str,
    turns: Sequence[Turn],
    *,
    max_tokens: int,
    images: ImageSource | None = None,
) -> Fitted:
    """The system prompt, then the newest turns that fit in `max_tokens`, in order.

    When several people talk in one thread, each of their messages is prefixed with a name so
    the model can tell them apart. The newest turn is always kept, its files' text cut to fit
    when it alone is over budget; older turns are left out whole, oldest first (the model and
    the person are told which files went). Images of kept turns are fetched through `images`.
    """
    authors = {t.author for t in turns if t.role == "user" and t.author}
    named = len(authors) > 1
    budget = max_tokens - estimate_tokens(system_prompt) - _MESSAGE_OVERHEAD
    kept: list[Turn] = []
    notes: list[str] = []
    for turn in reversed(turns):
        cost = estimate_tokens(turn.text(named)) + turn.image_tokens + _MESSAGE_OVERHEAD
        if kept and cost > budget:
            break
        if not kept and cost > budget:
            turn, cut = _cut_to_fit(turn, budget, named)
            notes += [f"Only the first part of {name} fit in what the model reads." for name in cut]
            cost = estimate_tokens(turn.text(named)) + turn.image_tokens + _MESSAGE_OVERHEAD
        budget -= cost
        kept.append(turn)
    kept.reverse()
    # A thread cut to fit should not open with an orphan reply.
    while len(kept) > 1 and kept[0].role == "assistant":
        kept.pop(0)
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt}]
    left_out = turns[: len(turns) - len(kept)]
    names = [a.name for t in left_out for a in t.attachments]
    if names:
        # Said only when files went: a long thread losing old words is nothing new.
        messages.append({
            "role": "system",
            "content": f"The thread's {len(left_out)} earlier messages, with the files "
            f"{', '.join(names)}, were left out to fit the context.",
        })  # fmt: skip
        notes.append(f"Earlier files were left out to fit: {', '.join(names)}.")
    spent = 0
    for turn in kept:
        message, gone = _message(turn, named, images)
        messages.append(message)
        spent += sum(a.image_tokens for a in turn.attachments if a.name not in gone)
        notes += [f"{name} is no longer available on Slack, so I did not see it." for name in gone]
    return Fitted(messages, notes, spent)


def _cut_to_fit(turn: Turn, budget: int, named: bool) -> tuple[Turn, list[str]]:
    """The turn with its files' text cut so that it fits `budget`; the names of those cut."""
    words = Turn(turn.role, turn.content, turn.author)
    room = budget - estimate_tokens(words.text(named)) - turn.image_tokens - _MESSAGE_OVERHEAD
    chars = max(0, room) * CHARS_PER_TOKEN
    attachments, cut = [], []
    for item in turn.attachments:
        if item.body is None:
            attachments.append(item)
            continue
        overhead = len(item.text()) - len(item.body)
        allowed = max(0, chars - overhead)
        if len(item.body) > allowed:
            # Text of about one character a token (CJK) is cut until it fits too.
            shortened = item.shortened(allowed)
            while shortened.body and estimate_tokens(shortened.text()) > max(1, room):
                shortened = shortened.shortened(len(shortened.body) * 9 // 10)
            item = shortened
            cut.append(item.name)
        chars = max(0, chars - len(item.text()))
        room = max(0, room - estimate_tokens(item.text()))
        attachments.append(item)
    return Turn(turn.role, turn.content, turn.author, tuple(attachments)), cut


def _message(turn: Turn, named: bool, images: ImageSource | None) -> tuple[ChatMessage, list[str]]:
    """The turn as a message: plain text, or text and image parts; and its images now gone."""
    text = turn.text(named)
    pictured = [a for a in turn.attachments if a.image is not None]
    if not pictured:
        return {"role": turn.role, "content": text}, []
    parts: list[ContentPart] = [{"type": "text", "text": text}] if text else []
    gone = []
    for item in pictured:
        assert item.image is not None
        url = images(item.image) if images is not None else None
        if url is None:
            gone.append(item.name)
            parts.append({"type": "text", "text": f"[Image {item.name}: no longer available]"})
            continue
        parts.append({"type": "text", "text": item.label})
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": turn.role, "content": parts}, gone


@dataclass(frozen=True)
class Context:
    """What one turn shows the model, and whether its message is the thread's first question."""

    messages: list[ChatMessage]
    first_question: bool
    notes: tuple[str, ...] = ()  # told to the person before the answer
    image_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """The estimated tokens of the whole context, its images included."""
        return sum(estimate_tokens(message_text(m)) for m in self.messages) + self.image_tokens


class ContextReader:
    """Builds each turn's context from the thread's stored history."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        users: UserDirectory,
        system_prompt: str,
        max_tokens: int,
        files: FileService | None = None,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._system_prompt = system_prompt
        self._max_tokens = max_tokens
        self._files = files
        # Names of a thread's authors looked up at once (a few threads, shared by every turn).
        self._lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="switchboard-names")

    def for_turn(self, job: TurnJob, shared: Sequence[FileRow] = ()) -> Context:
        """The thread up to the turn's message, that message as it is to be asked, with the
        files `shared` in it (as `FileService.shared` read them)."""
        work = job.work
        with self._sessions() as session:
            said = queries.thread_history(
                session,
                work.conversation_id,
                upto=work.message_id,
                upto_ts=work.slack_ts or "",
            )
        names = self._names(work.team_id, {s.slack_user_id for s in said if s.slack_user_id})
        rows = list(shared)
        attached = by_message(rows)
        history = [
            Turn(
                s.role,
                s.content,
                names.get(s.slack_user_id or "", s.author),
                attached.get(s.message_id or 0, ()),
            )
            for s in said
        ]
        if history and history[-1].role == "user":
            last = history[-1]
            history[-1] = Turn("user", job.prompt, last.author, last.attachments)
        fitted = fit_context(
            self._system_prompt, history, max_tokens=self._max_tokens, images=self._image_url
        )
        own = [row for row in rows if row.message_id == work.message_id]
        return Context(
            fitted.messages,
            first_question=len(history) == 1,
            notes=(*person_notes(own), *fitted.notes),
            image_tokens=fitted.image_tokens,
        )

    def _image_url(self, row: FileRow) -> str | None:
        image = self._files.image(row) if self._files is not None else None
        return image.data_url if image is not None else None

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
