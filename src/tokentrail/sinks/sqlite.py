"""The default sink: records into a local SQLite file (`$TOKENTRAIL_HOME/tokentrail.db`).

The table is the one described in `tokentrail.core.columns`, so `tokentrail serve` can open
the same file. The file is in WAL mode (readers such as the server or a report never block
the writer) with `synchronous=NORMAL` (durable across a process crash; the last commits may
be lost only on power failure). Each batch is one transaction of one `executemany`
`INSERT ... ON CONFLICT(id) DO NOTHING`, so writing a record twice stores it once.

Schema adoption: the sink creates `calls`, its indexes and `tokentrail_meta` only when they
are missing and records `schema_version` there. A file already migrated by the server (a
higher version, extra columns) is written as it is: the insert names its columns.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from tokentrail.core import LLMCall, ValidationError
from tokentrail.core.columns import (
    COLUMN_NAMES,
    COLUMNS,
    INDEXES,
    META_TABLE,
    SCHEMA_VERSION,
    TABLE,
    Column,
    ColumnType,
    record_to_row,
)
from tokentrail.core.settings import Settings

logger = logging.getLogger("tokentrail.sinks.sqlite")

_SQLITE_TYPES: dict[ColumnType, str] = {
    ColumnType.TEXT: "TEXT",
    ColumnType.INTEGER: "INTEGER",
    ColumnType.BIGINT: "INTEGER",
    ColumnType.FLOAT: "REAL",
    ColumnType.BOOLEAN: "INTEGER",
    ColumnType.JSON: "TEXT",
}

INSERT_SQL = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) VALUES ({', '.join('?' * len(COLUMN_NAMES))}) "
    "ON CONFLICT(id) DO NOTHING"
)


def _column_sql(column: Column) -> str:
    parts = [column.name, _SQLITE_TYPES[column.type]]
    if column.primary_key:
        parts.append("PRIMARY KEY")
    elif not column.nullable:
        parts.append("NOT NULL")
    return " ".join(parts)


def schema_statements() -> list[str]:
    """DDL creating the tables and indexes when missing (idempotent)."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(_column_sql(c) for c in COLUMNS)})",
    ]
    statements += [
        f"CREATE INDEX IF NOT EXISTS {index.name} ON {TABLE} ({', '.join(index.columns)})" for index in INDEXES
    ]
    return statements


def connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode with the schema present.

    `check_same_thread=False` because the sink is built in the configuring thread while its
    writes happen on the background worker; the sink's lock keeps use serial.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("tokentrail: %s could not switch to WAL (journal_mode=%s)", path, mode)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in schema_statements():
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {META_TABLE} (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteSink:
    """Writes batches of records to `settings.database_path`."""

    name = "sqlite"

    def __init__(self, settings: Settings) -> None:
        self.path = settings.database_path
        self._lock = threading.Lock()
        # Opened now so that a bad path fails at configure time rather than in the worker.
        self._conn: sqlite3.Connection | None = connect(self.path)
        self.written = 0
        self.duplicates = 0
        self.rejected = 0

    def write(self, calls: Sequence[LLMCall]) -> None:
        if not calls:
            return
        rows = []
        bad: list[str] = []
        for call in calls:
            try:
                rows.append(record_to_row(call))
            except (ValidationError, TypeError, ValueError) as exc:
                # One unstorable record must not cost the rest of its batch.
                bad.append(f"{call.id}: {exc}")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                before = conn.total_changes
                conn.executemany(INSERT_SQL, rows)
                inserted = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.written += inserted
        self.duplicates += len(rows) - inserted
        if bad:
            self.rejected += len(bad)
            raise ValidationError("record", f"{len(bad)} record(s) could not be stored: " + "; ".join(bad[:3]))

    def flush(self) -> None:
        """Every batch is committed by `write`; nothing is buffered here."""

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                # Fold the WAL back into the main file so the file is self-contained at rest.
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Reopened after close(): a pipeline restarted by configure() may reuse the sink.
            self._conn = connect(self.path)
        return self._conn


__all__ = ["INSERT_SQL", "SQLiteSink", "connect", "schema_statements"]
