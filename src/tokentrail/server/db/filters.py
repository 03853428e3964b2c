"""`CallFilter`: the filters `GET /v1/calls` and `GET /v1/usage` share, as SQL conditions on
the calls table and on a rollup cube."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from tokentrail.server.db import dialect
from tokentrail.server.db.models import calls

# Filterable dimensions (query parameter names); `model` matches request_model, or
# provider_model when no model was requested, the same value the rollups group by.
EQUALITY_FILTERS: tuple[str, ...] = (
    "provider",
    "model",
    "project",
    "user_id",
    "session_id",
    "tenant_id",
    "feature",
    "operation",
    "status",
)

model_expression = sa.func.coalesce(calls.c.request_model, calls.c.provider_model)


@dataclass(frozen=True, slots=True)
class CallFilter:
    since: int | None = None  # microseconds since the epoch, inclusive
    until: int | None = None  # exclusive
    equals: dict[str, str] = field(default_factory=dict)  # dimension -> value
    min_cost: int | None = None  # pico-USD, inclusive
    metadata: tuple[tuple[str, str], ...] = ()

    def with_project(self, project: str | None) -> CallFilter:
        """The same filter pinned to one project (a project key's scope)."""
        if project is None:
            return self
        return replace(self, equals={**self.equals, "project": project})

    @property
    def needs_calls_table(self) -> bool:
        """Filters no rollup can answer."""
        return self.min_cost is not None or bool(self.metadata) or "session_id" in self.equals


def call_conditions(flt: CallFilter) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if flt.since is not None:
        out.append(calls.c.started_at >= flt.since)
    if flt.until is not None:
        out.append(calls.c.started_at < flt.until)
    for name, value in flt.equals.items():
        if name == "model":
            out.append(
                sa.or_(
                    calls.c.request_model == value,
                    sa.and_(calls.c.request_model.is_(None), calls.c.provider_model == value),
                )
            )
        else:
            out.append(calls.c[name] == value)
    if flt.min_cost is not None:
        out.append(calls.c.total_cost >= flt.min_cost)
    for key, value in flt.metadata:
        out.append(dialect.metadata_equals(calls.c.record, key, value))
    return out


def cube_conditions(flt: CallFilter, table: sa.Table) -> list[sa.ColumnElement[bool]]:
    """Dimension filters on a cube (time is handled by the planner)."""
    return [table.c[name] == value for name, value in flt.equals.items()]


def range_conditions(column: sa.ColumnElement[Any], lo: int | None, hi: int | None) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if lo is not None:
        out.append(column >= lo)
    if hi is not None:
        out.append(column < hi)
    return out


__all__ = [
    "EQUALITY_FILTERS",
    "CallFilter",
    "call_conditions",
    "cube_conditions",
    "model_expression",
    "range_conditions",
]
