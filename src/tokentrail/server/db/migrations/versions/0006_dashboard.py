"""Dashboard: login tokens and sessions, and an index on calls (project, total_cost,
started_at) for the "top expensive calls" of a period.

Revision ID: 0006_dashboard
Revises: 0004_budgets
Create Date: 2025-01-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokentrail.server.db.dialect import bigint

revision = "0006_dashboard"
down_revision = "0004_budgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.Text(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", bigint(), nullable=False),
        sa.Column("expires_at", bigint(), nullable=False),
    )
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_index("ix_calls_project_cost", "calls", ["project", "total_cost", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_project_cost", table_name="calls")
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
