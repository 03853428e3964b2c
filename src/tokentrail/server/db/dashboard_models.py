"""Dashboard sessions (on the shared `models.metadata`), and the cost index the dashboard's
"top expensive calls" walks (project, total_cost, started_at).

`dashboard_sessions` holds both kinds of dashboard credential, only as sha256 of the random
token (256 bits, so no salt is needed):
- `login`: the one-time token `tokentrail serve` prints in its login URL; redeeming deletes
  the row, so it works once, on whichever instance the browser reaches;
- `session`: what the HttpOnly cookie carries after a login. `key_id` is the API key it was
  opened with (NULL for a login-URL session), so revoking the key ends its sessions.
Sessions live in the database, not in a signing secret, so every instance sharing one
PostgreSQL accepts them and logging out ends them everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa

from tokentrail.server.db import dialect
from tokentrail.server.db.models import calls, metadata

SESSIONS = "dashboard_sessions"
COST_INDEX = "ix_calls_project_cost"

dashboard_sessions = sa.Table(
    SESSIONS,
    metadata,
    sa.Column("token_hash", sa.Text(), primary_key=True),  # sha256 of the token, hex
    sa.Column("kind", sa.Text(), nullable=False),  # "login" | "session"
    sa.Column("key_id", sa.Integer(), nullable=True),  # api_keys.id; NULL: opened by a login URL
    sa.Column("project", sa.Text(), nullable=True),  # NULL with admin
    sa.Column("admin", sa.Boolean(), nullable=False),
    sa.Column("created_at", dialect.bigint(), nullable=False),  # microseconds since epoch, UTC
    sa.Column("expires_at", dialect.bigint(), nullable=False),
    sa.Index("ix_dashboard_sessions_expires_at", "expires_at"),
)

# Top expensive calls of a period: each project's calls walked from the most expensive down,
# the time checked from the index itself (see dashboard/queries.py `top_calls`).
sa.Index(COST_INDEX, calls.c.project, calls.c.total_cost, calls.c.started_at)

__all__ = ["COST_INDEX", "SESSIONS", "dashboard_sessions"]
