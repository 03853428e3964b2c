"""Alembic migrations: the migrated schema equals the models on both dialects, downgrades
work, and a SQLite file the SDK created is adopted with its rows."""

from __future__ import annotations

import sqlite3
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, T0, make_call, post_calls

from tokentrail.core.settings import Settings
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import include_object_for, metadata
from tokentrail.sinks.sqlite import SQLiteSink


def schema_diff(db: Database) -> list:
    with db.engine.connect() as conn, warnings.catch_warnings():
        # SQLite has no expression indexes to reflect; the PostgreSQL-only one is excluded there
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(conn, opts={"include_object": include_object_for(db.dialect_name)})
        return compare_metadata(context, metadata)


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


def test_migrated_schema_equals_the_models(db):
    assert migrate.current(db.engine) is None
    migrate.upgrade(db.engine)
    assert migrate.current(db.engine) == migrate.head()
    assert schema_diff(db) == []
    inspector = sa.inspect(db.engine)
    indexes = {ix["name"] for ix in inspector.get_indexes("calls")}
    assert {"ix_calls_started_at", "ix_calls_user_id", "ix_calls_unrolled", "ix_calls_request_model"} <= indexes
    assert ("ix_calls_metadata_gin" in indexes) == (db.dialect_name == "postgresql")
    if db.dialect_name == "postgresql":
        types = {c["name"]: str(c["type"]) for c in inspector.get_columns("calls")}
        assert types["record"] == "JSONB" and types["total_cost"] == "BIGINT"
    migrate.upgrade(db.engine)  # idempotent
    assert schema_diff(db) == []


def test_downgrade_and_upgrade_again(db):
    migrate.upgrade(db.engine)
    with db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO calls (id, operation, status, started_at, record) VALUES ('a', 'chat', 'ok', 1, '{}')"
        )
    migrate.downgrade(db.engine, "0001")  # the server tables go, the calls stay
    assert migrate.current(db.engine) == "0001"
    assert "rollup_day" not in migrate.table_names(db.engine)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT id FROM calls").scalars().all() == ["a"]
    migrate.upgrade(db.engine)
    assert schema_diff(db) == []
    migrate.downgrade(db.engine, "base")
    assert migrate.table_names(db.engine) <= {"alembic_version"}
    migrate.upgrade(db.engine)
    assert schema_diff(db) == []


def test_a_server_without_migrations_refuses_an_old_database(db_url):
    settings = ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY, migrate=False)
    with pytest.raises(RuntimeError, match="tokentrail db upgrade"), TestClient(create_app(settings)):
        pass


def sdk_sink(path: Path) -> SQLiteSink:
    return SQLiteSink(Settings.load(sqlite_path=str(path)))


def test_a_file_the_sdk_created_is_adopted(tmp_path):
    path = tmp_path / "tokentrail.db"
    sink = sdk_sink(path)
    before = [make_call(at=T0 + timedelta(minutes=i), user_id="sdk", project=None) for i in range(25)]
    sink.write(before)
    sink.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM tokentrail_meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert "alembic_version" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}

    settings = ServerSettings.load(database_url=str(path), admin_key=ADMIN_KEY)
    with TestClient(create_app(settings)) as client:
        db: Database = client.app.state.db
        assert schema_diff(db) == []
        listed = client.get("/v1/calls", params={"limit": "100"}, headers=ADMIN).json()["calls"]
        assert {r["id"] for r in listed} == {c.id for c in before}
        assert client.get(f"/v1/calls/{before[0].id}", headers=ADMIN).json() == before[0].to_dict()
        # new rows through the API, and the SDK still writing to the same file meanwhile
        served = [make_call(at=T0 + timedelta(hours=2, minutes=i), user_id="api") for i in range(5)]
        assert post_calls(client, served) == {"accepted": 5, "duplicates": 0}
        sink = sdk_sink(path)
        later = [make_call(at=T0 + timedelta(hours=3, minutes=i), user_id="sdk") for i in range(4)]
        sink.write(later)
        sink.close()
        rows = client.get("/v1/usage", params={"group_by": "user_id,day"}, headers=ADMIN).json()["rows"]
        assert {(r["user_id"], r["day"]): r["calls"] for r in rows} == {
            ("api", "2025-10-15"): 5,
            ("sdk", "2025-10-15"): 29,
        }
        total = client.get("/v1/usage", headers=ADMIN).json()["rows"][0]
        everything = [*before, *served, *later]
        assert Decimal(total["total_cost"]) == sum(c.cost_metrics.total_cost for c in everything)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM tokentrail_meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert conn.execute("SELECT count(*) FROM calls WHERE rolled_up IS NULL").fetchone() == (0,)
