"""Evaluations (seed 001): the evaluation catalog and results attached to calls, with the
judge's own `llm_metadata` (JSONB + GIN on PostgreSQL, TEXT on SQLite); and the cluster-wide
ingest counters `/metrics` reports.

Revision ID: 0003_evaluations
Revises: 0002
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokentrail.server.db.dialect import SQLITE, bigint, is_postgres, json_type

revision = "0003_evaluations"
down_revision = "0002"  # the file 0002_server.py
branch_labels = None
depends_on = None


def _double() -> sa.types.TypeEngine:
    return sa.Double().with_variant(sa.REAL(), SQLITE)


def upgrade() -> None:
    op.create_table(
        "evaluation_catalog",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("vendor_name", sa.String(100), nullable=True),
        sa.Column("adapter", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", bigint(), nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_evaluation_catalog_project_name"),
    )
    op.create_index("ix_evaluation_catalog_vendor_name", "evaluation_catalog", ["vendor_name"])
    op.create_table(
        "call_evaluations",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("evaluated_at", bigint(), nullable=False),
        sa.Column("score", _double(), nullable=True),
        sa.Column("passed", sa.Boolean().with_variant(sa.Integer(), SQLITE), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("execution_time_ms", _double(), nullable=True),
        sa.Column("judge_provider", sa.Text(), nullable=True),
        sa.Column("judge_model", sa.Text(), nullable=True),
        sa.Column("input_tokens", bigint(), nullable=True),
        sa.Column("output_tokens", bigint(), nullable=True),
        sa.Column("total_tokens", bigint(), nullable=True),
        sa.Column("total_cost", bigint(), nullable=True),
        sa.Column("pricing_status", sa.Text(), nullable=True),
        sa.Column("llm_metadata", json_type(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluation_catalog.id"], name="fk_call_evaluations_evaluation_id"),
    )
    op.create_index("ix_call_evaluations_call_id", "call_evaluations", ["call_id"])
    op.create_index("ix_call_evaluations_project", "call_evaluations", ["project", "evaluated_at"])
    op.create_index("ix_call_evaluations_evaluation", "call_evaluations", ["evaluation_id", "evaluated_at"])
    if is_postgres(op.get_bind()):
        op.create_index(
            "ix_call_evaluations_llm_metadata_gin", "call_evaluations", ["llm_metadata"], postgresql_using="gin"
        )
    op.create_table(
        "ingest_counters",
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        *(sa.Column(name, bigint(), nullable=False) for name in ("requests", "accepted", "duplicate", "rejected")),
        sa.PrimaryKeyConstraint("endpoint", "status_code", name="pk_ingest_counters"),
    )


def downgrade() -> None:
    op.drop_table("ingest_counters")
    if is_postgres(op.get_bind()):
        op.drop_index("ix_call_evaluations_llm_metadata_gin", table_name="call_evaluations")
    op.drop_index("ix_call_evaluations_evaluation", table_name="call_evaluations")
    op.drop_index("ix_call_evaluations_project", table_name="call_evaluations")
    op.drop_index("ix_call_evaluations_call_id", table_name="call_evaluations")
    op.drop_table("call_evaluations")
    op.drop_index("ix_evaluation_catalog_vendor_name", table_name="evaluation_catalog")
    op.drop_table("evaluation_catalog")
