"""What differs between SQLite and PostgreSQL, in one place the queries share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Result, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT in this dialect (PostgreSQL's, else SQLite's)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows the INSERT, UPDATE or DELETE that gave `result` touched.

    `Session.execute` is typed to return a `Result` whatever it runs; for these statements it
    returns the `CursorResult` that alone counts rows.
    """
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount
