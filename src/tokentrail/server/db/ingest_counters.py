"""Ingest counters shared by every instance: requests per (endpoint, status code) and the
records they accepted, found duplicate or rejected.

Each instance counts in memory (`metrics.IngestCounters`) and adds its counts to this table
now and then with the additive upsert the rollups use, so the table holds the cluster-wide
totals whichever instance served a request, and `/metrics` on any instance reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.server.db import dialect
from tokentrail.server.db.models import metadata

TABLE = "ingest_counters"
KEYS: tuple[str, ...] = ("endpoint", "status_code")
COUNTS: tuple[str, ...] = ("requests", "accepted", "duplicate", "rejected")

ingest_counters = sa.Table(
    TABLE,
    metadata,
    sa.Column("endpoint", sa.Text(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=False),
    *(sa.Column(name, dialect.bigint(), nullable=False) for name in COUNTS),
    sa.PrimaryKeyConstraint(*KEYS, name="pk_ingest_counters"),
)

Deltas = Mapping[tuple[str, int], tuple[int, int, int, int]]  # (endpoint, status) -> COUNTS


def add(conn: Connection, deltas: Deltas) -> None:
    """Add counts (concurrency-safe: `x = x + excluded.x`)."""
    rows = [(*key, *counts) for key, counts in deltas.items() if any(counts)]
    dialect.upsert_add(conn, TABLE, KEYS, COUNTS, rows)


def totals(conn: Connection) -> list[Any]:
    """Every (endpoint, status_code, requests, accepted, duplicate, rejected) row."""
    table = ingest_counters
    return list(conn.execute(sa.select(table).order_by(table.c.endpoint, table.c.status_code)))


__all__ = ["COUNTS", "KEYS", "TABLE", "Deltas", "add", "ingest_counters", "totals"]
