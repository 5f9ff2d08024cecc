"""Responses rows for tests, recorded the way the bot records them: the running totals count them.

The usage reports read `usage_daily` for whole days, so a test that inserted `Response` rows
directly would find its whole days empty. `record_response` goes through
`db.queries.add_response`, as every turn does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db import queries
from db.models import User


def record_response(session: Session, **values: Any) -> int:
    """Insert one responses row and count it in the totals, in the session's transaction; its id."""
    user = session.get(User, values["user_id"]) if values.get("user_id") else None
    return queries.add_response(
        session,
        queries.ResponseRecord(**values),
        slack_user_id=user.slack_user_id if user else None,
    )
