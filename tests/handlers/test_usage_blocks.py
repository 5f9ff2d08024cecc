"""The /usage message at its largest: one table that Slack takes, whose rows add up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.usage.reports import DMS, UsageLine, UsageReport
from bot.usage.request import last_days
from db.totals import Tally
from handlers.usage_blocks import report_message
from tests.fakes import block_kit

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def tally(n: int) -> Tally:
    return Tally(
        requests=n, errors=n % 2, tokens_prompt=100 * n, tokens_completion=10 * n,
        tokens_total=110 * n, cost_usd=Decimal(n) / 1000, unpriced=0,
    )  # fmt: skip


def test_a_crowded_workspace_fits_one_table_and_the_others_add_up() -> None:
    period = last_days(30, now=NOW)
    models = [UsageLine(f"model-{n}-" + "x" * 150, f"model-{n}-" + "x" * 150, tally(n))
              for n in range(40, 0, -1)]  # fmt: skip
    users = [UsageLine(f"U{n:08d}", f"person {n}", tally(n)) for n in range(60, 0, -1)]
    channels = [UsageLine(DMS, DMS, tally(70))]
    channels += [UsageLine(f"C{n:08d}", f"C{n:08d}", tally(n)) for n in range(60, 0, -1)]
    total = Tally(
        requests=sum(line.tally.requests for line in models),
        errors=sum(line.tally.errors for line in models),
        tokens_total=sum(line.tally.tokens_total for line in models),
        cost_usd=sum((line.tally.cost_usd for line in models), Decimal(0)),
    )
    days = [UsageLine(str(day), str(day), Tally()) for day in period.days()]
    days[-1] = UsageLine(days[-1].key, days[-1].label, total)
    report = UsageReport(
        period=period, team_id="T1", total=UsageLine("", "Total", total), models=models,
        users=users, channels=channels, days=days,
    )  # fmt: skip
    reply = report_message(report)
    assert reply.blocks is not None
    block_kit.check("chat.postMessage", {"blocks": reply.blocks})  # Slack would take it
    [table] = [block for block in reply.blocks if block["type"] == "table"]
    assert reply.blocks[-1] is table  # where Slack draws it anyway
    rows = table["rows"]
    # Three groups of a header, the top 10 and one row for the others.
    assert len(rows) == 3 * 12
    others = [row for row in rows if row[0].get("text", "").endswith("(all in /usage csv)")]
    assert [row[0]["text"] for row in others] == [
        "30 others (all in /usage csv)", "50 others (all in /usage csv)",
        "51 others (all in /usage csv)",
    ]  # fmt: skip
    # The models' costs, as shown, add up to the total as shown.
    shown = [Decimal(row[4]["text"].removeprefix("$")) for row in rows[1:12]]
    assert sum(shown) == total.cost_usd == Decimal("0.82")
    assert all(len(cell.get("text", "")) <= 60 for row in rows for cell in row)
    # DMs are one row, named so.
    assert any(row[0] == {"type": "raw_text", "text": "DMs"} for row in rows)
