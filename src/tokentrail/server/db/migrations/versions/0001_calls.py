"""The `calls` table and `tokentrail_meta` as the SDK's SQLite sink creates them (schema v1).

Adopts a file the SDK already created: every table, column and index is created only when
missing, so an SDK-made file and an empty database converge to the same schema. Frozen: the
column list is written out here, not read from `core.columns`, so that later changes to the
record columns come as new revisions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokentrail.core.columns import ColumnType
from tokentrail.server.db.dialect import SQLITE, column_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

T, INT, B, F, BOOL, J = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.BIGINT,
    ColumnType.FLOAT,
    ColumnType.BOOLEAN,
    ColumnType.JSON,
)
# (name, type, nullable) in the SDK's order; `id` is the primary key.
CALL_COLUMNS: tuple[tuple[str, ColumnType, bool], ...] = (
    ("id", T, False),
    ("trace_id", T, True),
    ("parent_id", T, True),
    ("operation", T, False),
    ("provider", T, True),
    ("request_model", T, True),
    ("provider_model", T, True),
    ("name", T, True),
    ("status", T, False),
    ("error_type", T, True),
    ("started_at", B, False),
    ("completed_at", B, True),
    ("duration_ms", F, True),
    ("input_tokens", B, True),
    ("output_tokens", B, True),
    ("cache_read_tokens", B, True),
    ("cache_write_tokens", B, True),
    ("reasoning_tokens", B, True),
    ("total_tokens", B, True),
    ("total_cost", B, True),
    ("pricing_status", T, True),
    ("project", T, True),
    ("user_id", T, True),
    ("session_id", T, True),
    ("tenant_id", T, True),
    ("feature", T, True),
    ("environment", T, True),
    ("service_name", T, True),
    ("workflow", T, True),
    ("event_id", T, True),
    ("customer_id", T, True),
    ("estimated", BOOL, True),
    ("streaming", BOOL, True),
    ("attempt", INT, True),
    ("record", J, False),
)
SDK_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_calls_started_at", ("started_at",)),
    ("ix_calls_provider_model", ("provider", "request_model", "started_at")),
    ("ix_calls_user_id", ("user_id", "started_at")),
    ("ix_calls_tenant_id", ("tenant_id", "started_at")),
    ("ix_calls_feature", ("feature", "started_at")),
    ("ix_calls_project", ("project", "started_at")),
    ("ix_calls_session_id", ("session_id", "started_at")),
    ("ix_calls_status", ("status", "started_at")),
)


def _column(name: str, kind: ColumnType, nullable: bool) -> sa.Column:
    return sa.Column(name, column_type(kind), primary_key=name == "id", nullable=nullable)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    if "tokentrail_meta" not in tables:
        op.create_table(
            "tokentrail_meta",
            sa.Column("key", sa.Text(), primary_key=True),
            sa.Column("value", sa.Text(), nullable=False),
        )
    if "calls" not in tables:
        op.create_table("calls", *(_column(*spec) for spec in CALL_COLUMNS))
    else:
        present = {c["name"] for c in inspector.get_columns("calls")}
        missing_required = [name for name, _, nullable in CALL_COLUMNS if name not in present and not nullable]
        if missing_required:
            raise RuntimeError(f"the existing calls table lacks required columns {missing_required}; cannot adopt it")
        for name, kind, nullable in CALL_COLUMNS:
            if name not in present:
                op.add_column("calls", _column(name, kind, nullable))
    indexes = {ix["name"] for ix in inspector.get_indexes("calls")} if "calls" in tables else set()
    for name, columns in SDK_INDEXES:
        if name not in indexes:
            op.create_index(name, "calls", list(columns))
    if bind.dialect.name == SQLITE:
        _make_keys_not_null(inspector, tables)
    meta = sa.table("tokentrail_meta", sa.column("key", sa.Text()), sa.column("value", sa.Text()))
    found = bind.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
    if found is None:
        op.execute(meta.insert().values(key="schema_version", value="1"))


def _make_keys_not_null(inspector: sa.Inspector, existing: set[str]) -> None:
    """The SDK declares `id TEXT PRIMARY KEY`, which SQLite leaves nullable; rebuild such a
    table once (data copied in this transaction) so it matches a server-made one."""
    for table, key in (("calls", "id"), ("tokentrail_meta", "key")):
        if table not in existing:
            continue
        column = next(c for c in inspector.get_columns(table) if c["name"] == key)
        if column["nullable"]:
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.alter_column(key, existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    for name, _ in SDK_INDEXES:
        op.drop_index(name, table_name="calls")
    op.drop_table("calls")
    op.drop_table("tokentrail_meta")
