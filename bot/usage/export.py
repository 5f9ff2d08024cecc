"""A usage report as CSV: one row for the total, then each model, member, channel and day."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.usage.reports import UsageLine, UsageReport

CSV_COLUMNS = (
    "section",
    "key",
    "name",
    "requests",
    "errors",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
    "unpriced_requests",
    "median_ms",
    "p95_ms",
    "answers_rated",
    "answers_positive",
    "share_positive",
    "cost_per_positive_usd",
)


def report_csv(report: UsageReport) -> str:
    """The report as CSV: one row for the total, then each model, user, channel and day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section, line in report_rows(report):
        writer.writerow(_csv_row(section, line))
    return out.getvalue()


def report_rows(report: UsageReport) -> Iterable[tuple[str, UsageLine]]:
    """Every line of the report with the name of its section, in report order."""
    yield "total", report.total
    sections: tuple[tuple[str, list[UsageLine]], ...] = (
        ("model", report.models),
        ("user", report.users),
        ("channel", report.channels),
        ("day", report.days),
    )
    for section, lines in sections:
        for line in lines:
            yield section, line


def _csv_row(section: str, line: UsageLine) -> list[str]:
    tally = line.tally
    return [
        section,
        line.key,
        line.label,
        str(tally.requests),
        str(tally.errors),
        str(tally.tokens_prompt),
        str(tally.tokens_completion),
        str(tally.tokens_total),
        format(tally.cost_usd.normalize(), "f"),
        str(tally.unpriced),
        _csv_ms(line.median_ms),
        _csv_ms(line.p95_ms),
        *_csv_ratings(line),
    ]


def _csv_ratings(line: UsageLine) -> list[str]:
    if line.ratings is None:
        return ["", "", "", ""]
    share, cost = line.share_positive, line.cost_per_positive
    return [
        str(line.ratings.rated),
        str(line.ratings.positive),
        "" if share is None else f"{share:.4f}",
        "" if cost is None else format(cost.quantize(Decimal("0.00000001")).normalize(), "f"),
    ]


def _csv_ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
