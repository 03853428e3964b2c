"""The server's tables (SQLAlchemy Core): `calls` as `core.columns` describes it, the rollup
cubes, API keys and the meta table the SDK shares. The Alembic migrations build exactly this
(tests compare them); `include_object` tells Alembic which objects exist on which dialect.

Rollup cubes: each is a table of additive sums per (time bucket, dimension values). A usage
query reads the smallest cube whose grain and dimensions cover it (see `usage.py`):
- `rollup_hour`, `rollup_day`: every rollup dimension, by hour and by UTC day;
- `rollup_day_core`: without `user_id` / `tenant_id`, so "cost by model by day" reads a few
  rows per day however many users there are.
Absent dimension values are stored as '' (a primary key column cannot be NULL, and NULLs
would never conflict in an upsert); the API reports them as null again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tokentrail.core.columns import COLUMNS, INDEXES, META_TABLE, TABLE
from tokentrail.server.db import dialect, latency

metadata = sa.MetaData()

# Set to 1 when a row's values are in the rollups; NULL for rows written straight into the
# file by the SDK's SQLite sink, which the catch-up folds in (see rollups.py).
ROLLED_UP = "rolled_up"

HOUR = 3_600_000_000  # microseconds
DAY = 24 * HOUR

# The rollup dimensions; `model` is request_model, or provider_model when none was requested.
DIMENSIONS: tuple[str, ...] = ("provider", "model", "project", "user_id", "tenant_id", "feature", "operation", "status")
CORE_DIMENSIONS: tuple[str, ...] = ("provider", "model", "project", "feature", "operation", "status")
TOKEN_SUMS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
MEASURES: tuple[str, ...] = ("calls", "errors", "unpriced_calls", *TOKEN_SUMS, "total_cost", *latency.COLUMNS)


@dataclass(frozen=True, slots=True)
class Cube:
    name: str
    grain: int  # bucket width in microseconds
    dimensions: tuple[str, ...]

    @property
    def table(self) -> sa.Table:
        return metadata.tables[self.name]


CUBES: tuple[Cube, ...] = (
    Cube("rollup_hour", HOUR, DIMENSIONS),
    Cube("rollup_day", DAY, DIMENSIONS),
    Cube("rollup_day_core", DAY, CORE_DIMENSIONS),
)

calls = sa.Table(
    TABLE,
    metadata,
    *(sa.Column(c.name, dialect.column_type(c.type), primary_key=c.primary_key, nullable=c.nullable) for c in COLUMNS),
    sa.Column(ROLLED_UP, sa.SmallInteger(), nullable=True),
)
for _index in INDEXES:  # the SDK's own indexes, same names: an SDK-made file already has them
    sa.Index(_index.name, *(calls.c[name] for name in _index.columns))
# Server-side filters beyond the SDK's.
sa.Index("ix_calls_request_model", calls.c.request_model, calls.c.started_at)
sa.Index("ix_calls_response_model", calls.c.provider_model, calls.c.started_at)
sa.Index("ix_calls_operation", calls.c.operation, calls.c.started_at)
# Only rows still missing from the rollups are in this index, so finding them is cheap.
sa.Index(
    "ix_calls_unrolled",
    calls.c.id,
    sqlite_where=calls.c.rolled_up.is_(None),
    postgresql_where=calls.c.rolled_up.is_(None),
)
# Metadata filters are JSONB containment on the record's metadata: a GIN index of that object
# alone (jsonb_path_ops, the compact @>-only opclass) rather than of the whole record, which
# would index every value of every record at several times the insert cost.
METADATA_GIN = "ix_calls_metadata_gin"
sa.Index(
    METADATA_GIN,
    dialect.record_metadata(calls.c.record).label("metadata"),
    postgresql_using="gin",
    postgresql_ops={"metadata": "jsonb_path_ops"},
).ddl_if(dialect=dialect.POSTGRESQL)
# Indexes that exist on PostgreSQL only (GIN over JSONB): Alembic's comparison skips them on
# SQLite. Table modules of other features (evaluations, ...) add their own names here.
POSTGRES_ONLY_INDEXES: set[str] = {METADATA_GIN}

meta = sa.Table(
    META_TABLE,
    metadata,
    sa.Column("key", sa.Text(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("prefix", sa.Text(), nullable=False),  # the key's first characters, for look-up and display
    sa.Column("salt", sa.Text(), nullable=False),
    sa.Column("key_hash", sa.Text(), nullable=False),  # sha256(salt + key), hex
    sa.Column("project", sa.Text(), nullable=True),  # None for admin keys
    sa.Column("admin", sa.Boolean(), nullable=False),
    sa.Column("name", sa.Text(), nullable=True),
    sa.Column("created_at", dialect.bigint(), nullable=False),
    sa.Column("revoked_at", dialect.bigint(), nullable=True),
    sa.Index("ix_api_keys_prefix", "prefix"),
)


def _cube_table(cube: Cube) -> sa.Table:
    return sa.Table(
        cube.name,
        metadata,
        sa.Column("bucket", dialect.bigint(), nullable=False),
        *(sa.Column(d, sa.Text(), nullable=False) for d in cube.dimensions),
        *(sa.Column(m, dialect.bigint(), nullable=False) for m in MEASURES),
        sa.PrimaryKeyConstraint("bucket", *cube.dimensions, name=f"pk_{cube.name}"),
    )


for _cube in CUBES:
    _cube_table(_cube)


def include_object_for(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic autogenerate filter for one dialect: the GIN indexes exist on PostgreSQL only,
    and `alembic_version` is Alembic's own table."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name == "alembic_version":
            return False
        return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES and dialect_name != dialect.POSTGRESQL)

    return include


__all__ = [
    "CORE_DIMENSIONS",
    "CUBES",
    "DAY",
    "DIMENSIONS",
    "HOUR",
    "MEASURES",
    "METADATA_GIN",
    "POSTGRES_ONLY_INDEXES",
    "ROLLED_UP",
    "TOKEN_SUMS",
    "Cube",
    "api_keys",
    "calls",
    "include_object_for",
    "meta",
    "metadata",
]
