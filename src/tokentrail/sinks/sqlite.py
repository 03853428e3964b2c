"""The default sink: records into a local SQLite file (`$TOKENTRAIL_HOME/tokentrail.db`).

The table is the one described in `tokentrail.core.columns`, so `tokentrail serve` can open
the same file. The file is in WAL mode (readers such as the server or a report never block
the writer) with `synchronous=NORMAL` (durable across a process crash; the last commits may
be lost only on power failure). Each batch is one transaction of one `executemany`
`INSERT ... ON CONFLICT(id) DO NOTHING`, so writing a record twice stores it once.

Schema adoption: the sink creates `calls`, its index (`LOCAL_INDEXES`: started_at; the
server's migrations add the others when they adopt the file) and `tokentrail_meta` only when they
are missing and records `schema_version` there. A file already migrated by the server (a
higher version, extra columns) is written as it is: the insert names its columns.

Speed (the sink runs on the SDK's background thread, sharing the GIL with the host):
rows go in as multi-row `INSERT ... VALUES (...), (...)` statements of up to 64 rows, so
SQLite does a whole batch's work in a few calls that release the GIL (one `executemany`
step per row would hand the GIL back and forth with the host for every record). Absent
values are written as `NULL` literals in a statement made for that pattern of absent
columns, rather than bound: Python's sqlite3 module adapts every bound `None` through a
registry lookup that costs several times a bound string.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from functools import partial
from itertools import chain
from operator import is_, is_not
from pathlib import Path
from typing import Any

from tokentrail.core import LLMCall, ValidationError
from tokentrail.core.columns import (
    COLUMN_NAMES,
    COLUMNS,
    LOCAL_INDEXES,
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

_INSERT_HEAD = f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) VALUES"
# Rows per statement (fewer when the variable limit needs it), in powers of two: few distinct
# statements, each a few GIL releases per batch. A prepared 64-row statement holds ~0.15 MB,
# and SQLite keeps up to _CACHED of them per connection, so memory stays bounded (~10 MB)
# even for records with ever-changing absent columns.
_MAX_ROWS = 64
_CACHED = 64
_NO_VALUES = (None,) * len(COLUMN_NAMES)
_present = partial(is_not, None)  # _present(v) is `v is not None`
_Pattern = tuple[bool, ...]  # per column: True where the row has no value (NULL)


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
        f"CREATE INDEX IF NOT EXISTS {index.name} ON {TABLE} ({', '.join(index.columns)})" for index in LOCAL_INDEXES
    ]
    return statements


def connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode with the schema present.

    `check_same_thread=False` because the sink is built in the configuring thread while its
    writes happen on the background worker; the sink's lock keeps use serial.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # a bounded statement cache: the sink's multi-row statements are large (see _MAX_ROWS)
    conn = sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=False, cached_statements=_CACHED
    )
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
        self._max_variables = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._statements: dict[tuple[_Pattern, int], str] = {}
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
                self._insert(conn, rows)
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

    def _insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` in order: runs of rows with the same absent columns share statements."""
        patterns = [tuple(map(is_, row, _NO_VALUES)) for row in rows]
        start, count = 0, len(rows)
        while start < count:
            pattern = patterns[start]
            end = start + 1
            while end < count and patterns[end] == pattern:
                end += 1
            per_row = len(pattern) - sum(pattern)
            most = max(1, min(_MAX_ROWS, self._max_variables // max(1, per_row)))
            while start < end:
                size = min(end - start, most)
                size = 1 << (size.bit_length() - 1)  # powers of two: few distinct statements
                values = list(chain.from_iterable(map(partial(filter, _present), rows[start : start + size])))
                conn.execute(self._statement(pattern, size), values)
                start += size

    def _statement(self, pattern: _Pattern, size: int) -> str:
        key = (pattern, size)
        sql = self._statements.get(key)
        if sql is None:
            if len(self._statements) >= 2 * _CACHED:
                self._statements.clear()  # a workload with ever-new patterns: start over
            row = "(" + ",".join("NULL" if absent else "?" for absent in pattern) + ")"
            sql = f"{_INSERT_HEAD} {','.join([row] * size)} ON CONFLICT(id) DO NOTHING"
            self._statements[key] = sql
        return sql

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
