"""Queries behind the receipts of slash commands. They take a Session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from db.models import CommandReceipt


def prune_receipts(session: Session, *, before: datetime) -> None:
    """Remove the receipts recorded before `before`: one indexed range delete."""
    session.execute(delete(CommandReceipt).where(CommandReceipt.created_at < before))
