"""The day's totals of a workspace per model, per member and per channel: the default report's.

Imported by `db.models`, so that `Base.metadata` (and Alembic) holds this table too.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, DayFigures, with_latency_columns


class UsageDailyScope(DayFigures, Base):
    """The responses of one UTC day in a workspace, summed per model, per member and per channel.

    Each response counts in three rows, one per scope, written beside its `usage_daily` row in
    the transaction that records it; a report of the whole workspace reads these (about 260
    rows a day in the bench's busy workspace) instead of that day's `usage_daily` rows (about
    1,200: every member x channel x model). The figures are those of `usage_daily`, histogram
    included. `scope_id` is the model's name, the channel id or the `users.id` as text; ""
    stands for no channel and no member (a primary key cannot hold NULL).
    """

    __tablename__ = "usage_daily_scopes"
    __table_args__ = (
        CheckConstraint("scope IN ('model', 'user', 'channel')", name="scope"),
        # The operators' report spans every workspace: a range of days alone.
        Index("ix_usage_daily_scopes_day", "day"),
    )

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(255), primary_key=True)


with_latency_columns(UsageDailyScope)
