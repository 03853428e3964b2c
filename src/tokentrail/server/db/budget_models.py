"""Tables of budgets, alert rules and the alert history, on the shared `models.metadata`
(migration `0004_budgets` builds exactly these).

Scopes are columns, one per scope field, so a project key's listing is an indexed equality;
`project` is '' for a budget or rule over every project (a NULL would escape the
(project, name) uniqueness). `alerts.dedupe_key` is unique: an alert is one row per
threshold per period, so several evaluators (threads, server instances) racing on one
crossing insert it once and only the one that inserted it delivers it.
"""

from __future__ import annotations

import sqlalchemy as sa

from tokentrail.server.db.dialect import bigint
from tokentrail.server.db.models import metadata

budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("project", sa.Text(), nullable=False),  # '' = every project
    sa.Column("user_id", sa.Text(), nullable=True),
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("feature", sa.Text(), nullable=True),
    sa.Column("model", sa.Text(), nullable=True),
    sa.Column("provider", sa.Text(), nullable=True),
    sa.Column("period", sa.Text(), nullable=False),  # day / week / month
    sa.Column("limit_pico", bigint(), nullable=False),  # USD * 1e12
    sa.Column("alert_at", sa.Text(), nullable=False),  # "0.5,0.8,1": fractions of the limit
    sa.Column("hard", sa.Boolean(), nullable=False),
    sa.Column("webhook_url", sa.Text(), nullable=True),
    sa.Column("created_at", bigint(), nullable=False),
    sa.Column("updated_at", bigint(), nullable=False),
    sa.UniqueConstraint("project", "name", name="uq_budgets_project_name"),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("project", sa.Text(), nullable=False),  # '' = every project
    sa.Column("user_id", sa.Text(), nullable=True),
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("feature", sa.Text(), nullable=True),
    sa.Column("model", sa.Text(), nullable=True),
    sa.Column("provider", sa.Text(), nullable=True),
    sa.Column("metric", sa.Text(), nullable=False),  # spend / tokens / error_rate / p95_latency_ms
    sa.Column("threshold", sa.Text(), nullable=False),  # exact decimal
    sa.Column("window", sa.Text(), nullable=False),  # 1h, 15m, day, week, month, ...
    sa.Column("min_calls", sa.Integer(), nullable=False),
    sa.Column("webhook_url", sa.Text(), nullable=True),
    sa.Column("created_at", bigint(), nullable=False),
    sa.UniqueConstraint("project", "name", name="uq_alert_rules_project_name"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    # budget:<id>.<created_at>:<period start us>:<fraction> or rule:<id>.<created_at>:<window start us>
    sa.Column("dedupe_key", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),  # budget / rule
    sa.Column("source_id", sa.Integer(), nullable=False),  # the budget's or rule's id
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("project", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),  # the JSON body delivered
    sa.Column("webhook_url", sa.Text(), nullable=True),
    sa.Column("fired_at", bigint(), nullable=False),
    # pending (to deliver) / delivered / failed (retries exhausted) / logged (no webhook)
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("next_attempt_at", bigint(), nullable=True),  # wall-clock us; a lease while sending
    sa.Column("delivered_at", bigint(), nullable=True),
    sa.UniqueConstraint("dedupe_key", name="uq_alerts_dedupe_key"),
    sa.Index("ix_alerts_due", "status", "next_attempt_at"),
    sa.Index("ix_alerts_project", "project", "id"),
)

__all__ = ["alert_rules", "alerts", "budgets"]
