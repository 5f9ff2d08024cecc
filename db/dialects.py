"""What differs between SQLite and PostgreSQL, in one place the queries share."""

from __future__ import annotations

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Table) -> Insert:
    """An INSERT that knows ON CONFLICT in this dialect (PostgreSQL's, else SQLite's)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
