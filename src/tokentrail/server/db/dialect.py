"""The one place that knows how SQLite and PostgreSQL differ.

Everything else in the server speaks SQLAlchemy Core and calls these functions for: column
types (JSONB vs TEXT, BIGINT vs INTEGER), engine setup (WAL and `BEGIN IMMEDIATE` on SQLite),
the bulk insert that reports which ids were new, the additive rollup upsert, claiming rows
for the rollup catch-up, JSON metadata filters and the migration lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine

from tokentrail.core.columns import ColumnType

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# A write transaction on SQLite takes the write lock at BEGIN, so read-then-write sequences
# (insert-if-new, rollup claims) cannot interleave with another writer.
WRITE_OPTION = "tokentrail_write"
_MIGRATION_LOCK_ID = 0x746F6B656E  # "token": one advisory lock shared by every instance


def record_metadata(record: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`record -> 'metadata'` on PostgreSQL: the GIN-indexed expression metadata filters use
    (the key is literal SQL, so the planner matches filter and index)."""
    return record.op("->")(sa.literal_column("'metadata'"))


def name_of(bind: Connection | Engine) -> str:
    return bind.dialect.name


def is_postgres(bind: Connection | Engine) -> bool:
    return bind.dialect.name == POSTGRESQL


# ---- types --------------------------------------------------------------------------------
def json_type() -> TypeEngine[Any]:
    """The full-record column: JSONB on PostgreSQL (GIN-indexable), TEXT on SQLite."""
    return sa.Text().with_variant(postgresql.JSONB(), POSTGRESQL)


def json_param(bind: Connection | Engine, value: dict[str, Any]) -> Any:
    """A JSON document as a `json_type()` column takes it in an insert or update: the object
    itself on PostgreSQL (the JSONB type serializes it), its text on SQLite."""
    if is_postgres(bind):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def column_type(kind: ColumnType) -> TypeEngine[Any]:
    """SQL type of a `core.columns` column type; SQLite spellings match the SDK's DDL."""
    if kind is ColumnType.TEXT:
        return sa.Text()
    if kind is ColumnType.INTEGER:
        return sa.Integer()
    if kind is ColumnType.BIGINT:
        return sa.BigInteger().with_variant(sa.Integer(), SQLITE)
    if kind is ColumnType.FLOAT:
        return sa.Double().with_variant(sa.REAL(), SQLITE)
    if kind is ColumnType.BOOLEAN:
        return sa.Boolean().with_variant(sa.Integer(), SQLITE)
    if kind is ColumnType.JSON:
        return json_type()
    raise ValueError(f"unknown column type {kind!r}")


def bigint() -> TypeEngine[Any]:
    return column_type(ColumnType.BIGINT)


def record_dict(value: Any) -> dict[str, Any]:
    """The stored record as a dict: psycopg decodes JSONB itself, SQLite gives text."""
    if isinstance(value, dict):
        return value
    return json.loads(value)


# ---- engine -------------------------------------------------------------------------------
def create_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5) -> Engine:
    if url.startswith(SQLITE):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30.0, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )
        _configure_sqlite(engine, sqlite_synchronous.upper())
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is off; the "begin" hook below issues BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Aggregates re-read the same rollup pages: a 64 MiB page cache and memory-mapped
        # reads keep them out of the read() system call path.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def read_options(bind: Connection | Engine) -> dict[str, Any]:
    """Execution options for a consistent multi-statement read (one snapshot)."""
    if is_postgres(bind):
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return {}  # a SQLite BEGIN in WAL mode reads one snapshot already


def migration_lock(conn: Connection) -> None:
    """Serialize migrations of instances starting together (SQLite: BEGIN IMMEDIATE did)."""
    if is_postgres(conn):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")


# ---- statements ---------------------------------------------------------------------------
def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_new(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert rows whose first column (the primary key `id`) is not stored yet; return the ids
    actually inserted. Rows must have distinct ids. Rows go in id order, so concurrent
    PostgreSQL writers take index locks in one order (no deadlock)."""
    if not rows:
        return set()
    names = ", ".join(columns)
    if is_postgres(conn):
        statement = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {{temp}} ORDER BY id "
            "ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        return {row[0] for row in _pg_copy_then(conn, table, columns, rows, statement)}
    # SQLite: the write transaction holds the database lock (BEGIN IMMEDIATE), so what the
    # SELECT finds missing is exactly what the INSERT adds.
    ordered = sorted(rows, key=lambda row: row[0])
    existing: set[str] = set()
    for chunk in _chunks([row[0] for row in ordered], 500):
        sql = f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})"
        existing.update(r[0] for r in conn.exec_driver_sql(sql, tuple(chunk)))
    new = [row for row in ordered if row[0] not in existing]
    if new:
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (id) DO NOTHING"
        conn.exec_driver_sql(sql, new)
    return {row[0] for row in new}


def upsert_add(
    conn: Connection,
    table: str,
    key_columns: Sequence[str],
    add_columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """`INSERT ... ON CONFLICT (keys) DO UPDATE SET x = x + excluded.x` for each row: additive,
    so concurrent writers (other instances) each add their own share. Rows are applied in key
    order (one lock order for every writer); keys must be distinct."""
    if not rows:
        return
    columns = (*key_columns, *add_columns)
    names, keys = ", ".join(columns), ", ".join(key_columns)
    update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in add_columns)
    if is_postgres(conn):
        statement = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {{temp}} ORDER BY {keys} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {update}"
        )
        _pg_copy_then(conn, table, columns, rows, statement)
        return
    ordered = sorted(rows, key=lambda row: row[: len(key_columns)])
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({keys}) DO UPDATE SET {update}", ordered
    )


def _pg_copy_then(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], statement: str
) -> list[Any]:
    """COPY `rows` into a session temp table shaped like `table`, then run `statement` (its
    `{temp}` filled in) and return what it returns. COPY is the cheapest way into
    PostgreSQL (one round trip, no per-row statement); the INSERT ... SELECT adds ON
    CONFLICT, RETURNING and the lock order."""
    temp = f"tokentrail_load_{table}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {temp} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(statement.replace("{temp}", temp))
        result = list(cursor.fetchall()) if cursor.description is not None else []
        cursor.execute(f"TRUNCATE {temp}")
        return result
    finally:
        cursor.close()


def claim_unrolled(conn: Connection, table: str, flag: str, columns: Sequence[str], limit: int) -> list[Any]:
    """Mark up to `limit` rows whose `flag` is NULL as rolled up and return their `columns`.

    Each row is returned to exactly one caller: on PostgreSQL the candidate rows are locked
    (`SKIP LOCKED`) and the outer `flag IS NULL` is re-checked after any wait; on SQLite the
    write transaction holds the database lock.
    """
    lock = " FOR UPDATE SKIP LOCKED" if is_postgres(conn) else ""
    mark = "%s" if is_postgres(conn) else "?"
    sql = (
        f"UPDATE {table} SET {flag} = 1 WHERE {flag} IS NULL AND id IN "
        f"(SELECT id FROM {table} WHERE {flag} IS NULL LIMIT {mark}{lock}) RETURNING {', '.join(columns)}"
    )
    return list(conn.exec_driver_sql(sql, (limit,)))


def metadata_equals(record: sa.ColumnElement[Any], key: str, value: str) -> sa.ColumnElement[bool]:
    """`record.metadata[key]` equals `value`: the string, or the JSON number/boolean it spells.

    PostgreSQL uses JSONB containment on `record -> 'metadata'` (served by its GIN index);
    SQLite `json_extract`.
    """
    alternatives: list[Any] = [value]
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, bool | int | float) and not isinstance(parsed, str):
        alternatives.append(parsed)
    return _MetadataEquals(record, key, alternatives)  # type: ignore[return-value]


class _MetadataEquals(sa.sql.expression.ColumnElement[bool]):
    """Compiled per dialect (below), so one query object serves both databases."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, record: sa.ColumnElement[Any], key: str, alternatives: list[Any]) -> None:
        self.record = record
        self.metadata_key = key
        self.alternatives = alternatives


@compiles(_MetadataEquals, POSTGRESQL)
def _metadata_pg(element: _MetadataEquals, compiler: Any, **kw: Any) -> str:
    metadata = record_metadata(element.record)
    tests = [
        metadata.op("@>")(sa.cast(sa.literal(json.dumps({element.metadata_key: alt})), postgresql.JSONB))
        for alt in element.alternatives
    ]
    return compiler.process(sa.or_(*tests), **kw)


@compiles(_MetadataEquals)
def _metadata_sqlite(element: _MetadataEquals, compiler: Any, **kw: Any) -> str:
    path = '$.metadata."' + element.metadata_key + '"'
    extracted = sa.func.json_extract(element.record, path)
    kind = sa.func.json_type(element.record, path)
    tests: list[Any] = [sa.and_(kind == "text", extracted == element.alternatives[0])]
    for alt in element.alternatives[1:]:
        if isinstance(alt, bool):
            tests.append(kind == ("true" if alt else "false"))
        else:
            tests.append(sa.and_(kind.in_(("integer", "real")), extracted == alt))
    return compiler.process(sa.or_(*tests), **kw)


__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "WRITE_OPTION",
    "bigint",
    "claim_unrolled",
    "column_type",
    "create_engine",
    "insert_new",
    "is_postgres",
    "json_param",
    "json_type",
    "metadata_equals",
    "migration_lock",
    "name_of",
    "read_options",
    "record_dict",
    "upsert_add",
]
