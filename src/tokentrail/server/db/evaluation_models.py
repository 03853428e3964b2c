"""Evaluation tables (PromptForge, seed 001), on the shared `models.metadata`.

- `evaluation_catalog`: what can be evaluated — name, source, `vendor_name` (DeepEval, Ragas,
  ...), adapter, description. Entries belong to a project; `project` is '' for a catalog
  entry an admin made for every project (a unique key cannot contain NULL, as in the cubes).
- `call_evaluations`: one result attached to one stored call: score, passed, reason,
  execution time and `llm_metadata`, the judge's own LLM-call JSON (usage, cost, ...). The
  judge's tokens and cost are copied into columns so cost reports sum integers; the cost is
  pico-USD like `calls.total_cost`. `project` is the evaluated call's project, for scoping.
  `llm_metadata` is JSONB with a GIN index on PostgreSQL, TEXT on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa

from tokentrail.server.db import dialect
from tokentrail.server.db.models import POSTGRES_ONLY_INDEXES, metadata

LLM_METADATA_GIN = "ix_call_evaluations_llm_metadata_gin"

evaluation_catalog = sa.Table(
    "evaluation_catalog",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("project", sa.Text(), nullable=False),  # '' = every project (admin-made)
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("vendor_name", sa.String(100), nullable=True),
    sa.Column("adapter", sa.Text(), nullable=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", dialect.bigint(), nullable=False),
    sa.UniqueConstraint("project", "name", name="uq_evaluation_catalog_project_name"),
    sa.Index("ix_evaluation_catalog_vendor_name", "vendor_name"),
)

call_evaluations = sa.Table(
    "call_evaluations",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),  # client-chosen (idempotent retries) or a server UUIDv7
    sa.Column("call_id", sa.Text(), nullable=False),
    sa.Column(
        "evaluation_id",
        sa.Integer(),
        sa.ForeignKey("evaluation_catalog.id", name="fk_call_evaluations_evaluation_id"),
        nullable=False,
    ),
    sa.Column("project", sa.Text(), nullable=True),  # the evaluated call's project
    sa.Column("evaluated_at", dialect.bigint(), nullable=False),  # microseconds since epoch, UTC
    sa.Column("score", sa.Double().with_variant(sa.REAL(), dialect.SQLITE), nullable=True),
    sa.Column("passed", sa.Boolean().with_variant(sa.Integer(), dialect.SQLITE), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("execution_time_ms", sa.Double().with_variant(sa.REAL(), dialect.SQLITE), nullable=True),
    sa.Column("judge_provider", sa.Text(), nullable=True),
    sa.Column("judge_model", sa.Text(), nullable=True),
    sa.Column("input_tokens", dialect.bigint(), nullable=True),
    sa.Column("output_tokens", dialect.bigint(), nullable=True),
    sa.Column("total_tokens", dialect.bigint(), nullable=True),
    sa.Column("total_cost", dialect.bigint(), nullable=True),  # pico-USD; exact string in llm_metadata
    sa.Column("pricing_status", sa.Text(), nullable=True),
    sa.Column("llm_metadata", dialect.json_type(), nullable=True),
    sa.Index("ix_call_evaluations_call_id", "call_id"),
    sa.Index("ix_call_evaluations_project", "project", "evaluated_at"),
    sa.Index("ix_call_evaluations_evaluation", "evaluation_id", "evaluated_at"),
)
# Containment queries on the judge's metadata (`llm_metadata @> '{"provider": "openai"}'`).
sa.Index(LLM_METADATA_GIN, call_evaluations.c.llm_metadata, postgresql_using="gin").ddl_if(dialect=dialect.POSTGRESQL)
POSTGRES_ONLY_INDEXES.add(LLM_METADATA_GIN)

__all__ = ["LLM_METADATA_GIN", "call_evaluations", "evaluation_catalog"]
