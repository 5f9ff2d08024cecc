"""Reading `/usage TEXT` and showing numbers: no database needed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bot.usage.figures import (
    Money,
    bar,
    busiest_words,
    format_count,
    format_ms,
    format_share,
    format_usd,
    glance,
    plural,
    sparkline,
)
from bot.usage.request import UsageError, UsageHelp, parse_request

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def test_no_text_is_the_last_thirty_utc_days_of_the_workspace() -> None:
    request = parse_request("", now=NOW)
    assert request.period.start == datetime(2026, 10, 22, tzinfo=UTC)
    assert request.period.end == NOW
    assert len(request.period.days()) == 30
    assert request.period.label == "last 30 days"
    assert (request.slack_user_id, request.channel_id, request.model, request.csv) == (
        None,
        None,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("word", "start", "end", "label"),
    [
        ("24h", datetime(2026, 11, 19, 15, 30, tzinfo=UTC), NOW, "last 24 hours"),
        ("7d", datetime(2026, 11, 14, tzinfo=UTC), NOW, "last 7 days"),
        ("1d", datetime(2026, 11, 20, tzinfo=UTC), NOW, "today"),
        (
            "2026-11-01..2026-11-15",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 11, 16, tzinfo=UTC),
            "2026-11-01 to 2026-11-15",
        ),
        (
            "2026-11-03",
            datetime(2026, 11, 3, tzinfo=UTC),
            datetime(2026, 11, 4, tzinfo=UTC),
            "2026-11-03",
        ),
        # A leap year is still one year.
        (
            "2024-01-01..2024-12-31",
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2025, 1, 1, tzinfo=UTC),
            "2024-01-01 to 2024-12-31",
        ),
    ],
)
def test_periods(word: str, start: datetime, end: datetime, label: str) -> None:
    period = parse_request(word, now=NOW).period
    assert (period.start, period.end, period.label) == (start, end, label)


def test_filters_combine_in_any_order() -> None:
    request = parse_request("model gpt-4o <#C123|general> 7d <@U456|ada> CSV", now=NOW)
    assert request.slack_user_id == "U456"
    assert request.channel_id == "C123"
    assert request.model == "gpt-4o"
    assert request.csv
    assert request.period.label == "last 7 days"


def test_links_without_names_and_plain_at_names() -> None:
    assert parse_request("<@U456>", now=NOW).slack_user_id == "U456"
    assert parse_request("<#C123>", now=NOW).channel_id == "C123"
    request = parse_request("@ada", now=NOW)
    assert (request.slack_user_id, request.user_name) == (None, "ada")


def test_me_and_all() -> None:
    assert parse_request("me", now=NOW).me
    assert parse_request("all", now=NOW).everyone


def test_help_is_the_syntax() -> None:
    with pytest.raises(UsageHelp) as answer:
        parse_request("help", now=NOW)
    assert "/usage [7d | 24h | 2026-11-01..2026-11-15]" in str(answer.value)


@pytest.mark.parametrize(
    ("text", "names", "example"),
    [
        ("7x", "“7x” is not a period", "`7d`"),
        ("3weeks", "“3weeks” is not a period", "`2026-11-01..2026-11-15`"),
        ("0d", "“0d” is an empty period", "`1d`"),
        ("400d", "longer than a year", "`90d`"),
        ("9000h", "longer than a year", "`90d`"),
        ("2025-01-01..2026-06-01", "longer than a year", "`2026-01-01..2026-12-31`"),
        ("2026-13-01..2026-11-15", "“2026-13-01” is not a date", "`2026-11-01..2026-11-15`"),
        ("2026-11-01..2026-11-31", "“2026-11-31” is not a date", "`2026-11-01..2026-11-15`"),
        ("2026-11-01..", "“2026-11-01..” is not a date", "YYYY-MM-DD"),
        ("26-11-01", "“26-11-01” is not a date", "YYYY-MM-DD"),
        (
            "2026-11-15..2026-11-01",
            "ends (2026-11-01) before it starts",
            "`2026-11-01..2026-11-15`",
        ),
        ("7d 24h", "one period only", "`/usage 7d`"),
        ("banana", "I don't understand “banana”", "`/usage 7d model gpt-4o`"),
        ("7d @", "I don't understand “@”", "/usage [7d"),
        ("model", "`model` needs a name", "`/usage model gpt-4o`"),
        ("#general", "which channel “#general” is", "`/usage 7d #general`"),
        ("<@U1> <@U2>", "one person only", "for example"),
        ("<#C1> <#C2>", "one channel only", "for example"),
    ],
)
def test_bad_input_names_what_is_wrong_and_shows_what_works(
    text: str, names: str, example: str
) -> None:
    with pytest.raises(UsageError) as problem:
        parse_request(text, now=NOW)
    assert names in str(problem.value)
    assert example in str(problem.value)


def test_the_day_list_of_an_hour_period_spans_the_days_it_touches() -> None:
    assert parse_request("24h", now=NOW).period.days() == [date(2026, 11, 19), date(2026, 11, 20)]
    assert parse_request("2026-11-03", now=NOW).period.days() == [date(2026, 11, 3)]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5678"), "$1,234.57"),
        (Decimal("1"), "$1.00"),
        (Decimal("0.5"), "$0.50"),
        (Decimal("0.0123456"), "$0.012"),
        (Decimal("0.99995"), "$1.00"),
        # Under a cent: 2 significant digits, never "$0.00" for something that cost.
        (Decimal("0.000033"), "$0.000033"),
        (Decimal("0.00001"), "$0.000010"),
        (Decimal("0.00000001"), "$0.00000001"),
        (Decimal("0"), "$0.00"),
    ],
)
def test_dollars_to_the_cent_or_two_significant_digits_below(value: Decimal, shown: str) -> None:
    assert format_usd(value) == shown


def test_amounts_shown_together_share_their_decimals_and_add_up() -> None:
    # The report: a channel of $0.000033 read "$0.00" beside a total of "$0.0002".
    parts = [Decimal("0.000033"), Decimal("0.000167")]
    total = sum(parts, Decimal(0))
    money = Money.for_values([total, *parts])
    assert [money(p) for p in parts] == ["$0.000033", "$0.000167"]
    assert money(total) == "$0.000200"
    # Beside dollars, a tiny part says how small it is rather than a false "$0.00".
    money = Money.for_values([Decimal("1234.57"), Decimal("0.000033")])
    assert (money(Decimal("1234.57")), money(Decimal("0.000033"))) == ("$1,234.57", "< $0.01")
    money = Money.for_values([Decimal("18.75"), Decimal("0.000033")])
    assert (money(Decimal("18.75")), money(Decimal("0.000033"))) == ("$18.75", "< $0.01")
    money = Money.for_values([Decimal("1.5"), Decimal("0.000033")])
    assert (money(Decimal("1.5")), money(Decimal("0.000033"))) == ("$1.500", "< $0.001")


def test_plurals_shares_bars_and_sparklines() -> None:
    assert [plural(n, "answer") for n in (0, 1, 2, 1234)] == [
        "0 answers", "1 answer", "2 answers", "1,234 answers",
    ]  # fmt: skip
    assert plural(1, "error") == "1 error" and plural(2, "reply", "replies") == "2 replies"
    assert format_share(0.001) == "< 1%" and format_share(0.5) == "50%"
    assert bar(0.62) == "▇▇▇▇▇▇▁▁▁▁" and bar(0.001) == "▇▁▁▁▁▁▁▁▁▁"
    # Nothing is the floor, anything at all is above it, the peak is the top.
    assert sparkline([0, 1, 0, 10, 5]) == "▁▃▁█▅"
    assert sparkline([0, 0]) == "▁▁"


def test_counts_and_durations_have_thousands_separators() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_ms(12345.4) == "12,345 ms"
    assert format_ms(None) == "n/a"


def test_the_period_at_a_glance() -> None:
    days = [date(2026, 11, d) for d in range(1, 31)]
    figures = {5: (3, Decimal("0.0004")), 18: (12, Decimal("0.42")), 3: (9, Decimal("0.31"))}
    figures[20] = (2, Decimal(0))  # two failed calls: cost nothing, not a busy day for cost
    view = glance([(day, *figures.get(day.day, (0, Decimal(0)))) for day in days])
    assert view is not None and view.measure == "daily cost" and len(view.spark) == 30
    assert view.spark[17] == "█" and view.spark[0] == "▁" and view.spark[4] == "▂"
    money = Money.for_values([Decimal("0.7304"), Decimal("0.0004")])
    assert busiest_words(view, money) == (
        "Nov 18 (12 requests, $0.42000), Nov 3 (9 requests, $0.31000), Nov 5 (3 requests, $0.00040)"
    )
    # Nothing priced: bars of requests; nothing at all: nothing to draw.
    view = glance([(day, *figures.get(day.day, (0, Decimal(0)))[:1], Decimal(0)) for day in days])
    assert view is not None and view.measure == "daily requests"
    assert [day.day for day, _, _ in view.busiest] == [18, 3, 5]
    assert glance([(day, 0, Decimal(0)) for day in days]) is None
    # A year: a bar a week.
    year = [(date(2026, 1, 1) + timedelta(days=n), 1, Decimal(0)) for n in range(365)]
    view = glance(year)
    assert view is not None and view.measure == "weekly requests" and len(view.spark) == 53
