"""Rollups stay equal to the calls table: at ingest, for rows written around the server
(the SDK's SQLite sink), and with several writers at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from server_helpers import ADMIN, T0, make_call, post_calls

from tokentrail.core.columns import COLUMN_NAMES, record_to_row
from tokentrail.server.db import latency, rollups
from tokentrail.server.db.calls import store_calls
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import CUBES, ROLLED_UP, calls


def cube_totals(db: Database) -> dict[str, tuple[int, int, int]]:
    """Per cube: (calls, input tokens, cost) summed over all its rows."""
    out = {}
    with db.read() as conn:
        for cube in CUBES:
            t = cube.table
            row = conn.execute(
                sa.select(sa.func.sum(t.c.calls), sa.func.sum(t.c.input_tokens), sa.func.sum(t.c.total_cost))
            ).one()
            out[cube.name] = tuple(int(v or 0) for v in row)
    return out


def table_totals(db: Database) -> tuple[int, int, int]:
    with db.read() as conn:
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(calls.c.input_tokens), sa.func.sum(calls.c.total_cost))
        ).one()
    return tuple(int(v or 0) for v in row)


def insert_around_the_server(db: Database, records) -> None:
    """Rows written by another writer (as the SDK's sink does): `rolled_up` left NULL."""
    with db.write() as conn:
        conn.execute(calls.insert(), [dict(zip(COLUMN_NAMES, record_to_row(c), strict=True)) for c in records])


def test_rows_written_around_the_server_are_folded_in_once(client):
    db: Database = client.app.state.db
    served = [make_call(at=T0 + timedelta(minutes=i)) for i in range(3)]
    post_calls(client, served)
    outside = [make_call(at=T0 + timedelta(hours=i), input_tokens=10 + i, user_id="sdk") for i in range(30)]
    insert_around_the_server(db, outside)
    assert rollups.catch_up(db, chunk=7) == 30
    assert rollups.catch_up(db) == 0
    expected = table_totals(db)
    assert expected[0] == 33
    assert all(total == expected for total in cube_totals(db).values())
    # and the usage endpoint (which catches up by itself) sees later ones too
    insert_around_the_server(db, [make_call(at=T0, user_id="sdk")])
    rows = client.get("/v1/usage", params={"group_by": "user_id"}, headers=ADMIN).json()["rows"]
    assert {r["user_id"]: r["calls"] for r in rows} == {"sdk": 31, None: 3}


def test_concurrent_catch_ups_never_fold_a_row_twice(client, settings):
    db: Database = client.app.state.db
    insert_around_the_server(db, [make_call(at=T0 + timedelta(seconds=i)) for i in range(400)])
    others = [Database(settings.database_url) for _ in range(3)]  # as if three more instances
    folded: list[int] = []
    threads = [threading.Thread(target=lambda d=d: folded.append(rollups.catch_up(d, chunk=25))) for d in [db, *others]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for other in others:
        other.dispose()
    assert sum(folded) == 400
    assert all(total == table_totals(db) for total in cube_totals(db).values())


def test_concurrent_ingest_of_overlapping_batches_counts_each_call_once(client, settings):
    calls_ = [make_call(at=T0 + timedelta(minutes=i % 90), user_id=f"u{i % 4}") for i in range(300)]
    instances = [Database(settings.database_url) for _ in range(3)]
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def ingest(db: Database, batches: list[list]) -> None:
        try:
            for batch in batches:
                with db.write() as conn:
                    results.append(store_calls(conn, batch))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # every instance sends every call, in a different order and batching
    plans = [
        [calls_[i : i + 50] for i in range(0, 300, 50)],
        [calls_[::-1][i : i + 70] for i in range(0, 300, 70)],
        [calls_[i::3] for i in range(3)],
    ]
    threads = [threading.Thread(target=ingest, args=(db, plan)) for db, plan in zip(instances, plans, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in instances:
        db.dispose()
    assert not errors, errors
    assert sum(a for a, _ in results) == 300
    assert sum(d for _, d in results) == 600
    db = client.app.state.db
    assert table_totals(db)[0] == 300
    assert all(total == table_totals(db) for total in cube_totals(db).values())
    cost = sum(c.cost_metrics.total_cost for c in calls_)
    row = client.get("/v1/usage", headers=ADMIN).json()["rows"][0]
    assert row["calls"] == 300 and Decimal(row["total_cost"]) == cost


def test_latency_bins_agree_between_python_and_sql(client):
    durations = [0.0, 0.5, 0.999, 1.0, 1.2589, 1.26, 9.99, 10.0, 250.0, 999_999.0, 1_000_000.0, 5e6]
    db: Database = client.app.state.db
    post_calls(client, [make_call(at=T0 + timedelta(seconds=i), ms=d) for i, d in enumerate(durations)])
    with db.read() as conn:
        rows = conn.execute(sa.select(calls.c.duration_ms, latency.bin_expression(calls.c.duration_ms))).all()
    assert len(rows) == len(durations)
    for duration, index in rows:
        assert index == latency.bin_of(duration), duration
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(calls.c[ROLLED_UP].is_(None))).scalar() == 0
