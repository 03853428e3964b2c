"""Repricing stored calls with the current catalog and overrides.

Each call is priced again from its own record, as the SDK priced it: the response's model
first, then the requested one; its `token_usage` and `units`; the prices in force at its
`started_at`; the service tier the response reports (else the one requested). Locally
estimated usage stays `estimated`; a provider-reported cost keeps winning and only its
`computed_cost` is updated. A call whose figures do not change is not written (a new
`price_version` alone is no change).

A real run works through the range in batches of `batch_size` calls, one transaction each:
the rows are locked (`FOR UPDATE` on PostgreSQL; SQLite's write lock), priced, written
(`total_cost`, `pricing_status` and the record's `cost_metrics`), and the rollups get the
difference (old subtracted, new added) in that same transaction, so they always equal the
calls table. Rows the SDK wrote straight into the file that are not in the rollups yet
(`rolled_up` NULL) are repriced without a rollup change; the catch-up folds in their new
cost. A dry run reads the same way and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core import CostBreakdown, LLMCall, PricingStatus, TokenUsage, ValidationError
from tokentrail.core.columns import from_micros, to_pico
from tokentrail.pricing import PriceEngine, apply_provider_reported
from tokentrail.server.db import dialect, rollups
from tokentrail.server.db.engine import Database
from tokentrail.server.db.filters import range_conditions
from tokentrail.server.db.models import ROLLED_UP, calls

DEFAULT_BATCH = 500
# Cost figures whose change makes a call "changed" (price_version and price_source do not).
_FIGURES = (
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "other_cost",
    "total_cost",
    "pricing_status",
    "provider_reported_cost",
    "computed_cost",
)


@dataclass(slots=True)
class ModelDelta:
    provider: str | None
    model: str | None
    calls: int = 0
    changed: int = 0
    old_total: Decimal = Decimal(0)
    new_total: Decimal = Decimal(0)
    newly_priced: int = 0
    newly_unpriced: int = 0

    @property
    def delta(self) -> Decimal:
        return self.new_total - self.old_total

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "calls": self.calls,
            "changed": self.changed,
            "old_total": _usd(self.old_total),
            "new_total": _usd(self.new_total),
            "delta": _usd(self.delta),
            "newly_priced": self.newly_priced,
            "newly_unpriced": self.newly_unpriced,
        }


@dataclass(slots=True)
class RepriceReport:
    dry_run: bool
    price_version: str
    examined: int = 0
    changed: int = 0
    old_total: Decimal = Decimal(0)
    new_total: Decimal = Decimal(0)
    newly_priced: int = 0
    newly_unpriced: int = 0
    models: dict[tuple[str | None, str | None], ModelDelta] = field(default_factory=dict)

    @property
    def delta(self) -> Decimal:
        return self.new_total - self.old_total

    def by_model(self) -> list[ModelDelta]:
        """Models whose cost changed, largest absolute difference first."""
        changed = [m for m in self.models.values() if m.changed]
        return sorted(changed, key=lambda m: (-abs(m.delta), m.provider or "", m.model or ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "price_version": self.price_version,
            "examined": self.examined,
            "changed": self.changed,
            "old_total": _usd(self.old_total),
            "new_total": _usd(self.new_total),
            "delta": _usd(self.delta),
            "newly_priced": self.newly_priced,
            "newly_unpriced": self.newly_unpriced,
            "models": [m.to_dict() for m in self.by_model()],
        }


def _usd(value: Decimal) -> str:
    return "0" if not value else format(value.normalize(), "f")


def price_again(engine: PriceEngine, call: LLMCall) -> CostBreakdown | None:
    """The call's cost under `engine`, or None when it cannot be priced again (no provider
    or model, no usage): then its stored cost stays as it is."""
    provider = call.provider
    usage, units = call.token_usage, call.units
    has_usage = usage is not None and not usage.is_empty
    has_units = units is not None and not units.is_empty
    model = call.provider_model or call.request_model
    if not provider or not model or not (has_usage or has_units):
        return None
    response, params = call.response_metadata, call.request_parameters
    tier = (response.service_tier if response is not None else None) or (
        params.service_tier if params is not None else None
    )
    usage = usage or TokenUsage()
    at = call.started_at
    cost = engine.calculate_cost(provider, model, usage, at=at, service_tier=tier, units=units)
    requested = call.request_model
    if cost.total_cost is None and requested and requested != model:
        retry = engine.calculate_cost(provider, requested, usage, at=at, service_tier=tier, units=units)
        if retry.total_cost is not None:
            cost = retry
    if call.estimated and cost.total_cost is not None:
        cost = replace(cost, pricing_status=PricingStatus.ESTIMATED)
    old = call.cost_metrics
    if old is not None and old.provider_reported_cost is not None:
        cost = apply_provider_reported(cost, old.provider_reported_cost)
    return cost


def _same(old: CostBreakdown | None, new: CostBreakdown) -> bool:
    if old is None:
        return False
    return all(getattr(old, name) == getattr(new, name) for name in _FIGURES)


def _selection(since: int | None, until: int | None, project: str | None) -> list[sa.ColumnElement[bool]]:
    conditions = range_conditions(calls.c.started_at, since, until)
    if project is not None:
        conditions.append(calls.c.project == project)
    return conditions


def count_calls(db: Database, *, since: int | None = None, until: int | None = None, project: str | None = None) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(*_selection(since, until, project))).scalar_one())


def _rollup_difference(old: list[tuple[Any, ...]], new: list[tuple[Any, ...]]) -> rollups.Deltas:
    """Rollup deltas that replace `old` source tuples by `new` ones (same keys, other costs)."""
    minus, plus = rollups.accumulate(old), rollups.accumulate(new)
    out: rollups.Deltas = {}
    for cube, table in plus.items():
        diffs = {}
        for key, acc in table.items():
            before = minus[cube].get(key)
            diff = [a - b for a, b in zip(acc, before, strict=True)] if before is not None else acc
            if any(diff):
                diffs[key] = diff
        for key, acc in minus[cube].items():
            if key not in table:
                diffs[key] = [-a for a in acc]
        out[cube] = diffs
    return out


_SOURCE_AT = {name: i for i, name in enumerate(rollups.SOURCE_COLUMNS)}
_COST_AT = _SOURCE_AT["total_cost"]


def _batch(
    conn: Connection,
    engine: PriceEngine,
    report: RepriceReport,
    conditions: list[sa.ColumnElement[bool]],
    after: tuple[int, str] | None,
    limit: int,
    write: bool,
) -> tuple[int, tuple[int, str] | None]:
    """Reprice one batch after the (started_at, id) position `after`; returns (rows read, last position)."""
    columns = [calls.c[name] for name in rollups.SOURCE_COLUMNS]
    query = sa.select(calls.c.id, calls.c.record, calls.c.pricing_status, calls.c[ROLLED_UP], *columns).where(
        *conditions
    )
    if after is not None:
        query = query.where(
            sa.or_(calls.c.started_at > after[0], sa.and_(calls.c.started_at == after[0], calls.c.id > after[1]))
        )
    query = query.order_by(calls.c.started_at, calls.c.id).limit(limit)
    if write:
        query = query.with_for_update()  # PostgreSQL row locks; SQLite holds its write lock already
    rows = conn.execute(query).all()
    old_sources: list[tuple[Any, ...]] = []
    new_sources: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        report.examined += 1
        data = dialect.record_dict(row.record)
        try:
            call = LLMCall.from_dict(data)
        except ValidationError:  # not a record this version can read: left as it is
            continue
        key = (call.provider, call.request_model or call.provider_model)
        model = report.models.get(key)
        if model is None:
            model = report.models[key] = ModelDelta(*key)
        model.calls += 1
        old = call.cost_metrics
        new = price_again(engine, call)
        old_total = old.total_cost if old is not None else None
        if old_total is not None:
            report.old_total += old_total
            model.old_total += old_total
        if new is None or _same(old, new) or (new.total_cost is None and old_total is None):
            if old_total is not None:
                report.new_total += old_total
                model.new_total += old_total
            continue
        new_total = new.total_cost
        if new_total is not None:
            report.new_total += new_total
            model.new_total += new_total
        report.changed += 1
        model.changed += 1
        if old_total is None and new_total is not None:
            report.newly_priced += 1
            model.newly_priced += 1
        elif old_total is not None and new_total is None:
            report.newly_unpriced += 1
            model.newly_unpriced += 1
        if not write:
            continue
        pico = to_pico(new_total) if new_total is not None else None
        data["cost_metrics"] = new.to_dict()
        updates.append(
            {
                "row_id": row.id,
                "new_cost": pico,
                "new_status": new.pricing_status.value,
                "new_record": dialect.json_param(conn, data),
            }
        )
        if row[3] is not None:  # in the rollups: move it from the old cost to the new
            source = tuple(row[4:])
            old_sources.append(source)
            new_sources.append((*source[:_COST_AT], pico, *source[_COST_AT + 1 :]))
    if updates:
        statement = (
            calls.update()
            .where(calls.c.id == sa.bindparam("row_id"))
            .values(
                total_cost=sa.bindparam("new_cost"),
                pricing_status=sa.bindparam("new_status"),
                record=sa.bindparam("new_record", type_=calls.c.record.type),
            )
        )
        conn.execute(statement, updates)
        if old_sources:
            rollups.apply(conn, _rollup_difference(old_sources, new_sources))
    last = (rows[-1].started_at, rows[-1].id) if rows else None
    return len(rows), last


def reprice(
    db: Database,
    engine: PriceEngine,
    *,
    since: int | None = None,
    until: int | None = None,
    project: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> RepriceReport:
    """Reprice the calls started in [since, until) (epoch microseconds; None: unbounded),
    optionally of one project. `progress(n)` is called after each batch of n calls."""
    report = RepriceReport(dry_run=dry_run, price_version=engine.price_version)
    conditions = _selection(since, until, project)
    after: tuple[int, str] | None = None
    while True:
        transaction = db.read() if dry_run else db.write()
        with transaction as conn:
            n, last = _batch(conn, engine, report, conditions, after, batch_size, write=not dry_run)
        if progress is not None and n:
            progress(n)
        if n < batch_size or last is None:
            return report
        after = last


def describe_range(since: int | None, until: int | None) -> str:
    lo = from_micros(since).isoformat() if since is not None else "the first call"
    hi = from_micros(until).isoformat() if until is not None else "now"
    return f"{lo} to {hi}"


__all__ = [
    "DEFAULT_BATCH",
    "ModelDelta",
    "RepriceReport",
    "count_calls",
    "describe_range",
    "price_again",
    "reprice",
]
