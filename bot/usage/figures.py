"""How figures read, the same in /usage, App Home, the command line and the budgets' messages:
money that never rounds a real cost to nothing, counts with their nouns, and a period drawn
on one line."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from db.tool_calls import ToolStats

# Costs are stored to the hundred-millionth of a dollar (Numeric(14, 8)): nothing finer exists.
_FINEST = 8
# Every figure of a set is shown to the cent at least, and the smallest to 2 significant
# digits; but the largest, if a dollar or more, gets no more than 4 significant digits (or
# cents) on its account ($18.75 beside $0.000033 would read $18.750000): such a tiny part
# shows "< $0.01" instead.
_MAX_SIGNIFICANT = 4
_BARS = "▁▂▃▄▅▆▇█"


def format_count(value: int) -> str:
    """A whole number with thousands separators: 1,234,567."""
    return f"{value:,}"


def plural(count: int, one: str, many: str | None = None) -> str:
    """The count and its noun, agreed: `1 answer`, `2 answers`, `1,204 replies`."""
    noun = one if count == 1 else (many if many is not None else one + "s")
    return f"{count:,} {noun}"


def format_share(value: float | None) -> str:
    """A share as a whole percentage (under 1 % as "< 1%"), or n/a when there is none."""
    if value is None:
        return "n/a"
    if 0 < value < 0.005:
        return "< 1%"
    return f"{round(value * 100)}%"


def format_ms(value: float | None) -> str:
    """A duration in whole milliseconds, or n/a when there is none."""
    return "n/a" if value is None else f"{round(value):,} ms"


@dataclass(frozen=True)
class Money:
    """Dollars written to a fixed number of decimals, shared by every figure of one view so
    that its parts add up to its total as shown."""

    decimals: int = 2

    @classmethod
    def for_values(cls, values: Iterable[Decimal]) -> Money:
        """The decimals that show the smallest non-zero value to 2 significant digits (at
        least cents, at most what is stored), within `_MAX_SIGNIFICANT` for the largest."""
        sizes = [abs(value) for value in values if value]
        if not sizes:
            return cls(2)
        smallest, largest = min(sizes), max(sizes)
        decimals = max(2, min(_FINEST, 1 - _exponent(smallest)))
        if largest >= 1:
            decimals = min(decimals, max(2, _MAX_SIGNIFICANT - 1 - _exponent(largest)))
        return cls(decimals)

    def __call__(self, value: Decimal) -> str:
        """`$1,234.57`, `$0.000033`; a cost too small for these decimals is `< $0.01`, and
        nothing at all beside sub-cent amounts is `$0`."""
        if not value and self.decimals > 2:
            return "$0"  # nothing at all: no row of zeros to read
        unit = Decimal(1).scaleb(-self.decimals)
        rounded = value.quantize(unit, rounding=ROUND_HALF_UP)
        if value and not rounded:
            shown = format(unit, "f")
            return f"< ${shown}" if value > 0 else f"> -${shown}"
        sign = "-" if rounded < 0 else ""
        return f"{sign}${abs(rounded):,.{self.decimals}f}"


def format_usd(value: Decimal) -> str:
    """One amount on its own: cents from a cent up, else 2 significant digits ($0.000033)."""
    return Money.for_values([value])(value)


def _exponent(value: Decimal) -> int:
    """The power of ten of the first significant digit: 0.000033 -> -5, 18.75 -> 1."""
    return math.floor(math.log10(value))


# ----- the period at a glance ------------------------------------------------------------------


@dataclass(frozen=True)
class Glance:
    """A period drawn on one line: a sparkline of one figure per bar, and its busiest days."""

    spark: str
    # What each bar counts: "daily cost" or "daily requests" (or "weekly …" for long periods).
    measure: str
    first: date
    last: date
    # The busiest days, busiest first, with their requests and cost.
    busiest: list[tuple[date, int, Decimal]]
    by_cost: bool


def glance(days: Sequence[tuple[date, int, Decimal]], *, top: int = 3) -> Glance | None:
    """The period's days (day, requests, cost; every day, oldest first) drawn: bars of cost
    when anything was priced, else of requests; a bar a day up to 62 days, else a bar a week.
    None when nothing was recorded."""
    if not days or not any(requests for _, requests, _ in days):
        return None
    by_cost = any(cost for _, _, cost in days)

    def figure(requests: int, cost: Decimal) -> Decimal:
        return cost if by_cost else Decimal(requests)

    values = [figure(requests, cost) for _, requests, cost in days]
    step = 1 if len(values) <= 62 else 7
    bins = [sum(values[i : i + step], Decimal(0)) for i in range(0, len(values), step)]
    busy = sorted(
        (day for day in days if figure(day[1], day[2])),
        key=lambda day: (-figure(day[1], day[2]), -day[1], day[0]),
    )
    unit = "daily" if step == 1 else "weekly"
    return Glance(
        spark=sparkline(bins),
        measure=f"{unit} {'cost' if by_cost else 'requests'}",
        first=days[0][0],
        last=days[-1][0],
        busiest=busy[:top],
        by_cost=by_cost,
    )


def sparkline(values: Sequence[Decimal | int]) -> str:
    """One bar per value, scaled to the largest: nothing is the lowest bar, anything at all
    at least the second, so a quiet day never reads as a busy one."""
    peak = max(values, default=0)
    if not peak:
        return _BARS[0] * len(values)
    bars = []
    for value in values:
        if not value:
            bars.append(_BARS[0])
        else:
            level = 1 + round(Decimal(value) / Decimal(peak) * (len(_BARS) - 2))
            bars.append(_BARS[min(level, len(_BARS) - 1)])
    return "".join(bars)


def bar(share: float, *, width: int = 10) -> str:
    """A share 0..1 as a bar of `width` blocks: `▇▇▇▇▁▁▁▁▁▁`; any share at all shows one."""
    filled = round(share * width)
    if share > 0 and not filled:
        filled = 1
    return "▇" * filled + "▁" * (width - filled)


def short_day(day: date, *, year: bool = False) -> str:
    """`Nov 8` (or `Nov 8, 2026`): a day in a line people read (ISO dates stay in the CSV)."""
    return f"{day:%b} {day.day}" + (f", {day.year}" if year else "")


def span_words(view: Glance) -> str:
    """`Nov 9 to Dec 8`, with the years when the period crosses one; one day on its own."""
    years = view.first.year != view.last.year
    if view.first == view.last:
        return short_day(view.first)
    return f"{short_day(view.first, year=years)} to {short_day(view.last, year=years)}"


def busiest_words(view: Glance, money: Money) -> str:
    """`Nov 18 (12 requests, $0.42), Nov 3 (9 requests, $0.31)`."""
    parts = []
    for day, requests, cost in view.busiest:
        detail = plural(requests, "request")
        if view.by_cost:
            detail += f", {money(cost)}"
        parts.append(f"{short_day(day)} ({detail})")
    return ", ".join(parts)


def tool_figures(stats: ToolStats) -> str:
    """`12 calls · 1 error · p95 430 ms`: one MCP tool's line in every front end."""
    return (
        f"{plural(stats.calls, 'call')} · {plural(stats.errors, 'error')} · "
        f"p95 {format_ms(stats.p95_ms)}"
    )
