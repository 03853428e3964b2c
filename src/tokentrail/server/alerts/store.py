"""The alert history: claiming an alert once, its delivery state, and the listing.

`claim` inserts with `ON CONFLICT (dedupe_key) DO NOTHING RETURNING id` (the same SQL on
SQLite and PostgreSQL): of any number of evaluators racing on one crossing — threads,
workers, instances — exactly one gets the id back, and only that one delivers.

Delivery state lives in the row, so retries survive a restart and any instance can finish
a delivery another one started: a sender first takes a lease (`next_attempt_at` moved ahead,
guarded by the value it read), so two instances never POST the same attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.server.db.budget_models import alerts

PENDING, DELIVERED, FAILED, LOGGED = "pending", "delivered", "failed", "logged"
STATUSES: tuple[str, ...] = (PENDING, DELIVERED, FAILED, LOGGED)

_CLAIM = sa.text(
    "INSERT INTO alerts (dedupe_key, kind, source_id, name, project, payload, webhook_url, fired_at, status, "
    "attempts, next_attempt_at) VALUES (:dedupe_key, :kind, :source_id, :name, :project, :payload, :webhook_url, "
    ":fired_at, :status, 0, :next_attempt_at) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert an evaluation found due: one threshold crossed in one period."""

    dedupe_key: str
    kind: str  # budget / rule
    source_id: int
    name: str
    project: str
    payload: dict[str, Any]
    webhook_url: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_url: str
    payload: str  # the JSON body
    attempts: int
    lease: int  # the next_attempt_at value this sender set


def existing(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Which of `keys` are already in the history."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(conn.execute(sa.select(alerts.c.dedupe_key).where(alerts.c.dedupe_key.in_(chunk))).scalars())
    return found


def claim(conn: Connection, firing: Firing, *, fired_at: int, now: int) -> int | None:
    """Insert the alert unless its key exists; its id when this call inserted it, else None."""
    payload = {**firing.payload, "dedupe_key": firing.dedupe_key}  # receivers can drop a repeat with it
    row = conn.execute(
        _CLAIM,
        {
            "dedupe_key": firing.dedupe_key,
            "kind": firing.kind,
            "source_id": firing.source_id,
            "name": firing.name,
            "project": firing.project,
            "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
            "webhook_url": firing.webhook_url,
            "fired_at": fired_at,
            "status": PENDING if firing.webhook_url else LOGGED,
            "next_attempt_at": now if firing.webhook_url else None,
        },
    ).first()
    return None if row is None else int(row[0])


def due(conn: Connection, now: int, limit: int = 50) -> list[tuple[int, int]]:
    """(id, next_attempt_at) of pending alerts whose next attempt is due, oldest first."""
    query = (
        sa.select(alerts.c.id, alerts.c.next_attempt_at)
        .where(alerts.c.status == PENDING, alerts.c.next_attempt_at <= now)
        .order_by(alerts.c.next_attempt_at, alerts.c.id)
        .limit(limit)
    )
    return [(int(r.id), int(r.next_attempt_at)) for r in conn.execute(query)]


def next_due(conn: Connection) -> int | None:
    """When the earliest pending attempt is due (wall-clock us), or None."""
    value = conn.execute(sa.select(sa.func.min(alerts.c.next_attempt_at)).where(alerts.c.status == PENDING)).scalar()
    return None if value is None else int(value)


def lease(conn: Connection, alert_id: int, seen: int, until: int) -> Delivery | None:
    """Take the next attempt of an alert (None if another sender took it first)."""
    taken = conn.execute(
        alerts.update()
        .where(alerts.c.id == alert_id, alerts.c.status == PENDING, alerts.c.next_attempt_at == seen)
        .values(next_attempt_at=until)
    ).rowcount
    if not taken:
        return None
    row = conn.execute(
        sa.select(alerts.c.webhook_url, alerts.c.payload, alerts.c.attempts).where(alerts.c.id == alert_id)
    ).one()
    return Delivery(alert_id, row.webhook_url, row.payload, int(row.attempts), until)


def finish_attempt(conn: Connection, delivery: Delivery, *, error: str | None, now: int, retry_at: int | None) -> str:
    """Record one attempt: delivered (no error), pending again until `retry_at`, or failed
    (no `retry_at`). Returns the new status."""
    status = DELIVERED if error is None else (PENDING if retry_at is not None else FAILED)
    conn.execute(
        alerts.update()
        .where(alerts.c.id == delivery.id, alerts.c.next_attempt_at == delivery.lease)
        .values(
            status=status,
            attempts=delivery.attempts + 1,
            last_error=None if error is None else error[:1000],
            next_attempt_at=retry_at if status == PENDING else None,
            delivered_at=now if status == DELIVERED else None,
        )
    )
    return status


def history(
    conn: Connection,
    *,
    project: str | None = None,
    filters: Mapping[str, Any] | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts newest first: the delivered payload plus id, status, attempts, last_error,
    delivered_at (us). `filters` match columns (kind, source_id, status)."""
    query = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if project is not None:
        query = query.where(alerts.c.project == project)
    for name, value in (filters or {}).items():
        query = query.where(alerts.c[name] == value)
    if before is not None:
        query = query.where(alerts.c.id < before)
    out = []
    for row in conn.execute(query):
        item = json.loads(row.payload)
        item.update(
            id=row.id,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            webhook_url=row.webhook_url,
            delivered_at=row.delivered_at,
        )
        out.append(item)
    return out


__all__ = [
    "DELIVERED",
    "FAILED",
    "LOGGED",
    "PENDING",
    "STATUSES",
    "Delivery",
    "Firing",
    "claim",
    "due",
    "existing",
    "finish_attempt",
    "history",
    "lease",
    "next_due",
]
