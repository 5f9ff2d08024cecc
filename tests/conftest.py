"""Shared fixtures: a clean environment and a fresh, migrated database per test.

Every test that asks for `db_url` runs on SQLite and, when a server answers, on PostgreSQL:
`TEST_DATABASE_URL` names it (and then it must answer), else the local server is tried.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.shell import migrations
from bot.shell.settings import Settings
from db.engine import make_engine, make_sessionmaker, normalize_url
from db.models import Base
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.harness import SlackAppHarness, harness_settings

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_SETTINGS_VARS = [field.name.upper() for field in fields(Settings)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings or `.env`."""
    for name in _SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _postgres_admin_url() -> str | None:
    explicit = os.environ.get("TEST_DATABASE_URL")
    url = normalize_url(explicit or LOCAL_POSTGRES)
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return url
    except OperationalError:
        if explicit:
            raise RuntimeError(
                f"TEST_DATABASE_URL is set but cannot be reached: {explicit}"
            ) from None
        return None
    finally:
        engine.dispose()


class _Postgres:
    """Creates throw-away databases on one PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def new_database(self) -> str:
        name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres | None]:
    """The PostgreSQL server the suite may use, or None."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        yield None
        return
    server = _Postgres(admin_url)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_migrated(postgres: _Postgres | None) -> str | None:
    """One migrated PostgreSQL database for the session, emptied before each test."""
    if postgres is None:
        return None
    url = postgres.new_database()
    migrations.upgrade(url)
    return url


def _backend_params() -> list[object]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=_backend_params())
def db_backend(request: pytest.FixtureRequest, postgres: _Postgres | None) -> str:
    """The name of the database backend this test runs on."""
    if request.param == "postgresql" and postgres is None:
        pytest.skip("no PostgreSQL server (set TEST_DATABASE_URL or start the local one)")
    return request.param


@pytest.fixture
def db_url(
    db_backend: str,
    tmp_path: Path,
    _sqlite_template: Path,
    _postgres_migrated: str | None,
) -> str:
    """A migrated database with no rows, private to this test."""
    if db_backend == "sqlite":
        path = tmp_path / "switchboard.db"
        shutil.copyfile(_sqlite_template, path)
        return f"sqlite:///{path}"
    assert _postgres_migrated is not None
    engine = create_engine(_postgres_migrated)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _postgres_migrated


@pytest.fixture
def empty_db_url(db_backend: str, tmp_path: Path, postgres: _Postgres | None) -> str:
    """A database with no tables at all, for migration tests."""
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    assert postgres is not None
    return postgres.new_database()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on this test's database."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory services take."""
    return make_sessionmaker(engine)


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    """A loopback Slack Web API."""
    with FakeSlackAPI() as fake:
        yield fake


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible endpoint."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def make_app(
    slack: FakeSlackAPI, model: FakeOpenAI, db_url: str
) -> Iterator[Callable[..., SlackAppHarness]]:
    """Start the real app with settings overridden as given; stopped after the test."""
    started: list[SlackAppHarness] = []

    def start(**overrides: Any) -> SlackAppHarness:
        harness = SlackAppHarness(harness_settings(slack, model, db_url, **overrides), slack, model)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.close()


@pytest.fixture
def app(make_app: Callable[..., SlackAppHarness]) -> SlackAppHarness:
    """The real app with the default test settings."""
    return make_app()
