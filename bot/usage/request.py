"""Reading `/usage TEXT`: period, person, channel and model, or a message saying what is wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

DEFAULT_DAYS = 30
MAX_DAYS = 366  # a leap year, 2024-01-01..2024-12-31, is still "one year"
SYNTAX = "/usage [7d | 24h | 2026-11-01..2026-11-15] [@user] [#channel] [model NAME] [csv]"
EXAMPLES = "for example `/usage 7d model gpt-4o` or `/usage 2026-11-01..2026-11-15 #general csv`"

HELP = (
    f"*/usage* reports requests, tokens, cost and completion times: `{SYNTAX}`.\n"
    "• a period: `24h`, `7d`, `2026-11-01` or `2026-11-01..2026-11-15` (UTC days; default: "
    f"the last {DEFAULT_DAYS} days, at most {MAX_DAYS} days)\n"
    "• `@user`, `#channel`, `model NAME`: narrow the report (they combine)\n"
    "• `csv`: every row as a CSV file in your DMs\n"
    "• `/usage budget`: the monthly limits and what is left of them (admins set them)\n"
    "Admins see the whole workspace; everyone else sees their own usage."
)
_HOURS = re.compile(r"^(\d+)h$")
_DAYS = re.compile(r"^(\d+)d$")
_UNIT = re.compile(r"^\d+[a-z]+$")
_DATE_LIKE = re.compile(r"^\d+-|\.\.")
_USER_LINK = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL_LINK = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")


class UsageError(ValueError):
    """The request cannot be answered; the message says why and shows what would work."""


class UsageHelp(UsageError):
    """The person asked how /usage works; the message is the answer."""


@dataclass(frozen=True)
class Period:
    """A half-open time range [start, end) in UTC, and how to name it."""

    start: datetime
    end: datetime
    label: str
    # True when `end` is the moment the report was asked for ("the last 7 days" rather than
    # a past date): nothing is recorded after it yet, so its day's running totals count whole.
    ends_now: bool = False

    def days(self) -> list[date]:
        """Every UTC day the period touches, oldest first."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class UsageRequest:
    """What `/usage TEXT` asks for."""

    period: Period
    slack_user_id: str | None = None
    user_name: str | None = None
    channel_id: str | None = None
    model: str | None = None
    everyone: bool = False
    me: bool = False
    csv: bool = False


# ----- reading `/usage TEXT` -----------------------------------------------------------------


def parse_request(text: str, *, now: datetime) -> UsageRequest:
    """Read the words after `/usage`; UsageError names the first word that makes no sense."""
    words = iter(text.split())
    found: dict[str, str] = {}
    flags: set[str] = set()
    period: Period | None = None
    for word in words:
        lowered = word.lower()
        if lowered in ("help", "?"):
            raise UsageHelp(HELP)
        if lowered in _FLAGS:
            flags.add(_FLAGS[lowered])
        elif lowered == "model":
            name = next(words, None)
            if name is None:
                raise UsageError(
                    "`model` needs a name after it, for example `/usage model gpt-4o`."
                )
            _set_once(found, "model", name, "model")
        elif match := _USER_LINK.match(word):
            _set_once(found, "person", match.group(1), "person")
        elif match := _CHANNEL_LINK.match(word):
            _set_once(found, "channel", match.group(1), "channel")
        elif word.startswith("@") and len(word) > 1:
            _set_once(found, "person", word, "person")
        elif word.startswith("#") and len(word) > 1:
            raise UsageError(
                f"I can't tell which channel “{word}” is: pick it from the list Slack offers as "
                "you type #, so that it becomes a link, for example `/usage 7d #general`."
            )
        elif (new_period := parse_period(word, now=now)) is not None:
            if period is not None:
                raise UsageError(
                    f"Give one period only, not both “{period.label}” and “{word}”, "
                    "for example `/usage 7d`."
                )
            period = new_period
        else:
            raise UsageError(f"I don't understand “{word}”. Usage: `{SYNTAX}`, {EXAMPLES}.")
    person = found.get("person")
    return UsageRequest(
        period=period or last_days(DEFAULT_DAYS, now=now),
        slack_user_id=person if person and not person.startswith("@") else None,
        user_name=person[1:] if person and person.startswith("@") else None,
        channel_id=found.get("channel"),
        model=found.get("model"),
        everyone="everyone" in flags,
        me="me" in flags,
        csv="csv" in flags,
    )


_FLAGS = {
    "csv": "csv",
    "me": "me",
    "mine": "me",
    "all": "everyone",
    "everyone": "everyone",
    "workspace": "everyone",
}


def _set_once(found: dict[str, str], key: str, value: str, what: str) -> None:
    if found.get(key, value) != value:
        raise UsageError(f"Name one {what} only, for example `/usage 7d @someone #general`.")
    found[key] = value


def parse_period(word: str, *, now: datetime) -> Period | None:
    """`24h`, `7d`, `2026-11-01` or `2026-11-01..2026-11-15` as a Period; None if no period."""
    lowered = word.lower()
    if match := _HOURS.match(lowered):
        hours = int(match.group(1))
        _check_length(word, hours, MAX_DAYS * 24)
        return Period(now - timedelta(hours=hours), now, f"last {hours} hours", ends_now=True)
    if match := _DAYS.match(lowered):
        days = int(match.group(1))
        _check_length(word, days, MAX_DAYS)
        return last_days(days, now=now)
    if _UNIT.match(lowered):
        raise UsageError(
            f"“{word}” is not a period I know: use hours or days, for example `24h` or `7d`, "
            "or dates, for example `2026-11-01..2026-11-15`."
        )
    if _DATE_LIKE.search(word):
        first, dots, last = word.partition("..")
        return date_range(_date(first, word), _date(last, word) if dots else None, now=now)
    return None


def last_days(days: int, *, now: datetime) -> Period:
    """Today and the `days - 1` UTC days before it."""
    if days < 1:
        raise UsageError("A period needs at least one day, for example `/usage 7d`.")
    if days > MAX_DAYS:
        raise UsageError(_too_long(f"{days} days"))
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    label = "today" if days == 1 else f"last {days} days"
    return Period(today - timedelta(days=days - 1), now, label, ends_now=True)


def parse_day(value: str) -> date | None:
    """A date written YYYY-MM-DD; None for anything else."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def range_problem(first: date, last: date) -> Literal["reversed", "too long"] | None:
    """What is wrong with the days `first` to `last` as a report's period, if anything."""
    if last < first:
        return "reversed"
    if (last - first).days + 1 > MAX_DAYS:
        return "too long"
    return None


def date_range(first: date, last: date | None, *, now: datetime) -> Period:
    """The UTC days from `first` to `last` inclusive (`last` defaults to `first`)."""
    last = last or first
    problem = range_problem(first, last)
    if problem == "reversed":
        raise UsageError(
            f"The period ends ({last}) before it starts ({first}): put the earlier date first, "
            f"for example `{last}..{first}`."
        )
    if problem == "too long":
        raise UsageError(_too_long(f"{first}..{last}"))
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    label = str(first) if first == last else f"{first} to {last}"
    return Period(start, end, label)


def _date(value: str, word: str) -> date:
    day = parse_day(value)
    if day is None:
        raise UsageError(
            f"“{value or word}” is not a date: write dates as YYYY-MM-DD, "
            "for example `2026-11-01..2026-11-15`."
        )
    return day


def _check_length(word: str, amount: int, maximum: int) -> None:
    if amount < 1:
        raise UsageError(f"“{word}” is an empty period: use at least `1h` or `1d`.")
    if amount > maximum:
        raise UsageError(_too_long(f"“{word}”"))


def _too_long(what: str) -> str:
    return (
        f"{what} is longer than a year: a report covers at most {MAX_DAYS} days, "
        "for example `90d` or `2026-01-01..2026-12-31`."
    )
