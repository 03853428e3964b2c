"""Server tables: rollup cubes, API keys, the rollup marker and server-side indexes on calls.

Rows already in `calls` (written by the SDK before the server ever opened the file) keep
`rolled_up` NULL; the server's rollup catch-up folds them into the cubes at start.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokentrail.server.db.dialect import bigint, is_postgres

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DIMENSIONS = ("provider", "model", "project", "user_id", "tenant_id", "feature", "operation", "status")
CORE_DIMENSIONS = ("provider", "model", "project", "feature", "operation", "status")
MEASURES = (
    "calls",
    "errors",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_cost",
    *(f"lat_{i:02d}" for i in range(62)),
)
CUBES = (("rollup_hour", DIMENSIONS), ("rollup_day", DIMENSIONS), ("rollup_day_core", CORE_DIMENSIONS))
CALL_INDEXES = (
    ("ix_calls_request_model", ("request_model", "started_at")),
    ("ix_calls_response_model", ("provider_model", "started_at")),
    ("ix_calls_operation", ("operation", "started_at")),
)


def upgrade() -> None:
    op.add_column("calls", sa.Column("rolled_up", sa.SmallInteger(), nullable=True))
    for name, columns in CALL_INDEXES:
        op.create_index(name, "calls", list(columns))
    unrolled = sa.column("rolled_up").is_(None)
    op.create_index("ix_calls_unrolled", "calls", ["id"], sqlite_where=unrolled, postgresql_where=unrolled)
    if is_postgres(op.get_bind()):
        # metadata filters: `record -> 'metadata' @> {...}`
        op.create_index(
            "ix_calls_metadata_gin", "calls", [sa.text("(record -> 'metadata') jsonb_path_ops")], postgresql_using="gin"
        )
    for name, dimensions in CUBES:
        op.create_table(
            name,
            sa.Column("bucket", bigint(), nullable=False),
            *(sa.Column(d, sa.Text(), nullable=False) for d in dimensions),
            *(sa.Column(m, bigint(), nullable=False) for m in MEASURES),
            sa.PrimaryKeyConstraint("bucket", *dimensions, name=f"pk_{name}"),
        )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("salt", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created_at", bigint(), nullable=False),
        sa.Column("revoked_at", bigint(), nullable=True),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_prefix", table_name="api_keys")
    op.drop_table("api_keys")
    for name, _ in reversed(CUBES):
        op.drop_table(name)
    if is_postgres(op.get_bind()):
        op.drop_index("ix_calls_metadata_gin", table_name="calls")
    op.drop_index("ix_calls_unrolled", table_name="calls")
    for name, _ in reversed(CALL_INDEXES):
        op.drop_index(name, table_name="calls")
    # SQLite >= 3.35 drops a column in place (the index using it is gone by now).
    op.drop_column("calls", "rolled_up")
