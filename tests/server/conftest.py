"""Server test fixtures: every storage and API test runs on SQLite (a temporary file) and on
PostgreSQL (a fresh schema per test, dropped afterwards).

PostgreSQL is `TOKENTRAIL_TEST_PG` (default postgresql://postgres@127.0.0.1:5432/test). When
it does not answer, its parameters skip with the reason, except with CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN_KEY

from tokentrail.server import ServerSettings, create_app
from tokentrail.server.settings import sqlite_url

PG_URL = os.environ.get("TOKENTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_pg_problem: list[str | None] = []  # memo: [None] reachable, [reason] not


def pg_unreachable() -> str | None:
    if not _pg_problem:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_problem.append(None)
        except psycopg.Error as exc:
            _pg_problem.append(f"PostgreSQL at {PG_URL} is not reachable: {str(exc).strip() or type(exc).__name__}")
    return _pg_problem[0]


def require_pg() -> None:
    problem = pg_unreachable()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)


def pg_schema_url(schema: str) -> str:
    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"


def new_pg_schema() -> tuple[str, str]:
    """A fresh schema and the URL whose connections use it."""
    require_pg()
    schema = f"tt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, pg_schema_url(schema)


def drop_pg_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database URL with nothing in it, on each dialect."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "collector.db")
        return
    schema, url = new_pg_schema()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def settings(db_url: str) -> ServerSettings:
    return ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY)


@pytest.fixture
def client(settings: ServerSettings) -> Iterator[TestClient]:
    """The app over a migrated database, started (lifespan run) for the test."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
