"""Alembic migrations run from code (`tokentrail serve` at start, `tokentrail db upgrade|downgrade`).

The scripts ship inside the package (`server/db/migrations`), so no alembic.ini is needed.
Each run is one transaction holding the migration lock (PostgreSQL advisory lock; SQLite
`BEGIN IMMEDIATE`), so instances starting together migrate once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tokentrail.server.db import dialect

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision shipped with this version."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated by the server)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(engine: Engine, action: str, revision: str) -> None:
    config = _config()
    with engine.connect() as conn:
        conn.execution_options(**{dialect.WRITE_OPTION: True})
        with conn.begin():
            dialect.migration_lock(conn)
            config.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "-1") -> None:
    _run(engine, "downgrade", revision)


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


__all__ = ["MIGRATIONS", "current", "downgrade", "head", "table_names", "upgrade"]
