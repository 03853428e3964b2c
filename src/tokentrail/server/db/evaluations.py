"""Evaluations (seed 001): the catalog, results attached to calls, and what the judges cost.

A result's `llm_metadata` is an LLMCall-like JSON object describing the judge's own LLM call.
Its `token_usage` and `cost_metrics` sections are validated with the record's own types
(`TokenUsage`, `CostBreakdown`); when the cost is absent but usage, provider and model are
present it is priced with `calculate_cost` at the judge call's start. The stored object is
that normalized form; its tokens and cost are copied into columns for the cost reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tokentrail.core import CostBreakdown, PricingStatus, TokenUsage, ValidationError, normalize_provider, uuid7
from tokentrail.core.columns import MAX_PICO, from_micros, to_micros, to_pico
from tokentrail.core.fields import as_time
from tokentrail.pricing import calculate_cost
from tokentrail.server.db import dialect
from tokentrail.server.db.evaluation_models import call_evaluations, evaluation_catalog
from tokentrail.server.db.filters import range_conditions
from tokentrail.server.db.models import calls
from tokentrail.server.db.usage import format_usd

GLOBAL = ""  # the `project` of a catalog entry shared by every project
# PromptForge spells a few usage keys its own way; they mean ours.
_USAGE_ALIASES = {
    "cache_creation_tokens": "cache_write_tokens",
    "prompt_tokens": "input_tokens",
    "completion_tokens": "output_tokens",
}
_SECTION_KEYS = (
    "performance_metrics",
    "request_parameters",
    "response_metadata",
    "rate_limit_info",
    "provider_specific",
    "metadata",
)
_START_KEYS = ("started_at", "request_timestamp")
COST_GROUPS: dict[str, tuple[str, ...]] = {
    "vendor": ("vendor_name",),
    "evaluation": ("evaluation", "vendor_name"),
    "provider": ("provider",),
    "model": ("model",),
}


# ---- validation ---------------------------------------------------------------------------
def check_json_text(field: str, value: Any) -> None:
    """Refuse what PostgreSQL cannot store (NUL, unpaired surrogates), on every database alike."""
    text = json.dumps(value, ensure_ascii=False)
    if "\x00" in text or "\\u0000" in text:
        raise ValidationError(field, "contains a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError(field, "contains an unpaired UTF-16 surrogate, which cannot be stored") from None


@dataclass(frozen=True, slots=True)
class JudgeUsage:
    """The validated `llm_metadata` of one result and the figures copied into columns."""

    metadata: dict[str, Any]
    provider: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    total_cost: int | None  # pico-USD
    pricing_status: str | None


def _model_of(data: Mapping[str, Any]) -> str | None:
    for key in ("provider_model", "request_model", "model"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    params = data.get("request_parameters")
    if isinstance(params, Mapping) and isinstance(params.get("model"), str) and params["model"]:
        return str(params["model"])
    return None


def _usage(raw: Any) -> TokenUsage:
    path = "llm_metadata.token_usage"
    if not isinstance(raw, Mapping):
        raise ValidationError(path, f"must be an object, got {type(raw).__name__}")
    counts: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        name = _USAGE_ALIASES.get(str(key), str(key))
        if name in counts:
            raise ValidationError(f"{path}.{key}", f"repeats {name}")
        counts[name] = value
    usage = TokenUsage.from_dict(counts, path=path)
    if usage.total_tokens is None and usage.input_tokens is not None and usage.output_tokens is not None:
        usage = TokenUsage.from_dict({**usage.to_dict(), "total_tokens": usage.input_tokens + usage.output_tokens})
    return usage


def judge_usage(raw: Any, *, default_at: datetime) -> JudgeUsage:
    """Validate and normalize a result's `llm_metadata`; prices it when no cost is given."""
    if not isinstance(raw, Mapping):
        raise ValidationError("llm_metadata", f"must be an object, got {type(raw).__name__}")
    data: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    for key in _SECTION_KEYS:
        if key in data and not isinstance(data[key], Mapping):
            raise ValidationError(f"llm_metadata.{key}", f"must be an object, got {type(data[key]).__name__}")
    provider = data.get("provider")
    if provider is not None:
        if not isinstance(provider, str) or not provider.strip():
            raise ValidationError("llm_metadata.provider", "must be a non-empty string")
        provider = data["provider"] = normalize_provider(provider)
    model = _model_of(data)
    at = default_at
    for key in _START_KEYS:
        if key in data:
            at = as_time(f"llm_metadata.{key}", data[key])
            break
    usage = _usage(data["token_usage"]) if "token_usage" in data else None
    if usage is not None:
        data["token_usage"] = usage.to_dict()
    cost: CostBreakdown | None = None
    if "cost_metrics" in data:
        cost = CostBreakdown.from_dict(data["cost_metrics"], path="llm_metadata.cost_metrics")
        if cost.total_cost is None and cost.pricing_status is not PricingStatus.UNPRICED:
            raise ValidationError("llm_metadata.cost_metrics.total_cost", "is required unless the cost is unpriced")
    elif usage is not None and not usage.is_empty and provider and model:
        cost = calculate_cost(provider, model, usage, at=at)
    if cost is not None:
        data["cost_metrics"] = cost.to_dict()
    check_json_text("llm_metadata", data)
    pico = to_pico(cost.total_cost) if cost is not None and cost.total_cost is not None else None
    for name in ("input_tokens", "output_tokens", "total_tokens"):
        value = getattr(usage, name) if usage is not None else None
        if value is not None and value > MAX_PICO:
            raise ValidationError(f"llm_metadata.token_usage.{name}", "is over the storable maximum (2**63 - 1)")
    return JudgeUsage(
        metadata=data,
        provider=provider,
        model=model,
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=usage.output_tokens if usage is not None else None,
        total_tokens=usage.total_tokens if usage is not None else None,
        total_cost=pico,
        pricing_status=cost.pricing_status.value if cost is not None else None,
    )


# ---- the catalog --------------------------------------------------------------------------
def _now() -> int:
    return to_micros(datetime.now(UTC))


def catalog_entry(row: Any) -> dict[str, Any]:
    out = {
        "id": row.id,
        "name": row.name,
        "source": row.source,
        "vendor_name": row.vendor_name,
        "adapter": row.adapter,
        "description": row.description,
        "project": row.project or None,
        "created_at": from_micros(row.created_at).isoformat().replace("+00:00", "Z"),
    }
    return {k: v for k, v in out.items() if v is not None}


def save_catalog_entry(
    conn: Connection,
    *,
    project: str,
    name: str,
    source: str,
    vendor_name: str | None = None,
    adapter: str | None = None,
    description: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Create the entry `name` in `project` ('' = every project), or update its fields.
    Returns (the entry, whether it was created)."""
    values = {"source": source, "vendor_name": vendor_name, "adapter": adapter, "description": description}
    table = evaluation_catalog
    where = (table.c.project == project, table.c.name == name)
    created = False
    if conn.execute(sa.select(table.c.id).where(*where)).first() is None:
        try:
            with conn.begin_nested():  # a concurrent instance may insert the same name first
                conn.execute(table.insert().values(project=project, name=name, created_at=_now(), **values))
            created = True
        except IntegrityError:
            pass
    if not created:
        conn.execute(table.update().where(*where).values(**values))
    return catalog_entry(conn.execute(sa.select(table).where(*where)).one()), created


def list_catalog(conn: Connection, *, project: str | None, everything: bool) -> list[dict[str, Any]]:
    """Entries visible to a project (its own and the shared ones); `everything` for an admin
    listing every project's."""
    table = evaluation_catalog
    query = sa.select(table).order_by(table.c.name, table.c.project)
    if not everything:
        query = query.where(table.c.project.in_([project or GLOBAL, GLOBAL]))
    return [catalog_entry(row) for row in conn.execute(query)]


def find_evaluation(conn: Connection, name: str, project: str | None) -> Any | None:
    """The catalog entry a result names: the call's project's own, else the shared one."""
    table = evaluation_catalog
    rows = conn.execute(sa.select(table).where(table.c.name == name, table.c.project.in_([project or GLOBAL, GLOBAL])))
    found = {row.project: row for row in rows}
    return found.get(project or GLOBAL) or found.get(GLOBAL)


# ---- results ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewResult:
    evaluation: str
    id: str | None = None
    score: float | None = None
    passed: bool | None = None
    reason: str | None = None
    execution_time_ms: float | None = None
    evaluated_at: datetime | None = None
    llm_metadata: Mapping[str, Any] | None = None


class ResultConflict(Exception):
    """A result id already used for another call or with other values."""


def _result_query() -> sa.Select[Any]:
    r, c = call_evaluations, evaluation_catalog
    return (
        sa.select(r, c.c.name.label("evaluation"), c.c.source, c.c.vendor_name)
        .join(c, c.c.id == r.c.evaluation_id)
        .order_by(r.c.evaluated_at, r.c.id)
    )


def result_json(row: Any) -> dict[str, Any]:
    out = {
        "id": row.id,
        "call_id": row.call_id,
        "evaluation": row.evaluation,
        "evaluation_source": row.source,
        "vendor_name": row.vendor_name,
        "score": row.score,
        "passed": None if row.passed is None else bool(row.passed),
        "reason": row.reason,
        "execution_time_ms": row.execution_time_ms,
        "evaluated_at": from_micros(row.evaluated_at).isoformat().replace("+00:00", "Z"),
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "total_tokens": row.total_tokens,
        "evaluation_cost": format_usd(row.total_cost) if row.total_cost is not None else None,
        "llm_metadata": None,
    }
    if row.llm_metadata is not None:
        metadata = out["llm_metadata"] = dialect.record_dict(row.llm_metadata)
        # the exact decimal string as priced or reported (the column is rounded to pico-USD)
        reported = (metadata.get("cost_metrics") or {}).get("total_cost")
        if reported is not None:
            out["evaluation_cost"] = reported
    return {k: v for k, v in out.items() if v is not None}


def add_result(conn: Connection, call_id: str, project: str | None, result: NewResult) -> tuple[dict[str, Any], bool]:
    """Attach a result to the stored call `call_id` (of `project`). Returns (the stored
    result, whether it is new); resending the same id for the same call returns the stored one."""
    entry = find_evaluation(conn, result.evaluation, project)
    if entry is None:
        raise ValidationError(
            "evaluation", f"no catalog entry named {result.evaluation!r}; create it with POST /v1/evaluations/catalog"
        )
    for name, value in (("score", result.score), ("execution_time_ms", result.execution_time_ms)):
        if value is not None and not math.isfinite(value):
            raise ValidationError(name, "must be a finite number")
    if result.execution_time_ms is not None and result.execution_time_ms < 0:
        raise ValidationError("execution_time_ms", "must not be negative")
    evaluated_at = result.evaluated_at or datetime.now(UTC)
    judge = judge_usage(result.llm_metadata, default_at=evaluated_at) if result.llm_metadata is not None else None
    result_id = result.id or uuid7()
    existing = conn.execute(_result_query().where(call_evaluations.c.id == result_id)).first()
    if existing is not None:
        if existing.call_id != call_id:
            raise ResultConflict(f"result id {result_id!r} is already attached to another call")
        return result_json(existing), False
    values = {
        "id": result_id,
        "call_id": call_id,
        "evaluation_id": entry.id,
        "project": project,
        "evaluated_at": to_micros(evaluated_at),
        "score": result.score,
        "passed": result.passed,
        "reason": result.reason,
        "execution_time_ms": result.execution_time_ms,
    }
    if judge is not None:
        values |= {
            "judge_provider": judge.provider,
            "judge_model": judge.model,
            "input_tokens": judge.input_tokens,
            "output_tokens": judge.output_tokens,
            "total_tokens": judge.total_tokens,
            "total_cost": judge.total_cost,
            "pricing_status": judge.pricing_status,
            "llm_metadata": dialect.json_param(conn, judge.metadata),
        }
    try:
        with conn.begin_nested():
            conn.execute(call_evaluations.insert().values(**values))
    except IntegrityError:  # the same id inserted meanwhile by a retry on another instance
        stored = conn.execute(_result_query().where(call_evaluations.c.id == result_id)).one()
        if stored.call_id != call_id:
            raise ResultConflict(f"result id {result_id!r} is already attached to another call") from None
        return result_json(stored), False
    return result_json(conn.execute(_result_query().where(call_evaluations.c.id == result_id)).one()), True


def results_of(conn: Connection, call_id: str) -> list[dict[str, Any]]:
    """Every result attached to one call, oldest first."""
    return [result_json(row) for row in conn.execute(_result_query().where(call_evaluations.c.call_id == call_id))]


def call_project(conn: Connection, call_id: str, project: str | None) -> tuple[bool, str | None]:
    """(whether the call exists and `project` may see it, the call's project)."""
    query = sa.select(calls.c.project).where(calls.c.id == call_id)
    if project is not None:
        query = query.where(calls.c.project == project)
    row = conn.execute(query).first()
    return (row is not None, row.project if row is not None else None)


# ---- cost reports -------------------------------------------------------------------------
def parse_cost_groups(text: str | None) -> tuple[str, ...]:
    names = tuple(part.strip() for part in (text or "vendor").split(",") if part.strip())
    if not names:
        raise ValidationError("group_by", "names nothing")
    for name in names:
        if name not in COST_GROUPS:
            raise ValidationError("group_by", f"{name!r} is not one of {', '.join(COST_GROUPS)}")
    if len(set(names)) != len(names):
        raise ValidationError("group_by", "repeats a dimension")
    return names


def evaluation_costs(
    conn: Connection,
    group_by: Sequence[str],
    *,
    since: int | None = None,
    until: int | None = None,
    project: str | None = None,
) -> list[dict[str, Any]]:
    """Per group: results (`calls`: judge calls), judge tokens and cost, most expensive first.
    `unpriced` counts results whose judge call has usage but no cost."""
    r, c = call_evaluations, evaluation_catalog
    columns = {
        "vendor_name": c.c.vendor_name,
        "evaluation": c.c.name,
        "provider": r.c.judge_provider,
        "model": r.c.judge_model,
    }
    keys: list[str] = []
    for group in group_by:
        keys.extend(k for k in COST_GROUPS[group] if k not in keys)
    selected = [columns[k].label(k) for k in keys]
    has_usage = sa.or_(r.c.input_tokens.is_not(None), r.c.output_tokens.is_not(None))
    query = (
        sa.select(
            *selected,
            sa.func.count().label("calls"),
            sa.func.sum(r.c.input_tokens).label("input_tokens"),
            sa.func.sum(r.c.output_tokens).label("output_tokens"),
            sa.func.sum(r.c.total_tokens).label("total_tokens"),
            sa.func.sum(r.c.total_cost).label("total_cost"),
            sa.func.sum(sa.case((sa.and_(has_usage, r.c.total_cost.is_(None)), 1), else_=0)).label("unpriced"),
        )
        .join(c, c.c.id == r.c.evaluation_id)
        .where(*range_conditions(r.c.evaluated_at, since, until))
        .group_by(*(columns[k] for k in keys))
    )
    if project is not None:
        query = query.where(r.c.project == project)
    rows = []
    for row in conn.execute(query):
        out: dict[str, Any] = {k: getattr(row, k) for k in keys}
        out["calls"] = int(row.calls)
        for name in ("input_tokens", "output_tokens", "total_tokens"):
            value = getattr(row, name)
            out[name] = int(value) if value is not None else 0
        out["total_cost"] = format_usd(int(row.total_cost or 0))
        out["unpriced"] = int(row.unpriced or 0)
        rows.append(out)
    rows.sort(key=lambda o: (-Decimal(o["total_cost"]), *(o[k] or "" for k in keys)))
    return rows


__all__ = [
    "COST_GROUPS",
    "GLOBAL",
    "JudgeUsage",
    "NewResult",
    "ResultConflict",
    "add_result",
    "call_project",
    "catalog_entry",
    "check_json_text",
    "evaluation_costs",
    "find_evaluation",
    "judge_usage",
    "list_catalog",
    "parse_cost_groups",
    "result_json",
    "results_of",
    "save_catalog_entry",
]
