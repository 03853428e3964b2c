"""The dashboard's pages: overview, calls, call detail and breakdowns. Every page needs a
session (else it redirects to the login page) and sees what its key may see: a project
key's session only its project, an admin's everything (with a project selector)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tokentrail.core import ModelOperation, ValidationError
from tokentrail.server.api.deps import call_filter, database, settings
from tokentrail.server.auth import Forbidden, Principal
from tokentrail.server.dashboard import detail, queries
from tokentrail.server.dashboard.charts import Bucket, stacked_bars
from tokentrail.server.dashboard.login import current_principal, redeem, to_login
from tokentrail.server.dashboard.render import error_page, page, static
from tokentrail.server.db import rollups
from tokentrail.server.db.calls import get_call, list_calls
from tokentrail.server.db.evaluations import results_of
from tokentrail.server.db.filters import CallFilter

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# The filters of GET /v1/calls, in the order the form shows them.
FILTER_FIELDS: tuple[str, ...] = (
    "since", "until", "provider", "model", "project", "user_id", "session_id", "tenant_id", "feature",
    "operation", "status", "min_cost",
)  # fmt: skip
OPERATIONS = tuple(op.value for op in ModelOperation)
TOKEN_SERIES = ["Uncached input", "Cache read", "Cache write", "Output"]  # bottom up
OVERVIEW_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("model", "By model", "model"),
    ("provider", "By provider", "provider"),
    ("user_id", "By user", "user"),
    ("feature", "By feature", "feature"),
)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _context(request: Request, principal: Principal, period: str | None, project: str | None) -> tuple[Any, ...]:
    """The period and the project a page may show (400 / 403 pages for bad ones)."""
    try:
        chosen = queries.resolve_period(period)
    except ValidationError as exc:
        raise _Refused(error_page(request, principal, 400, "Bad request", str(exc))) from None
    try:
        scoped = principal.scoped_project(project or None)
    except Forbidden as exc:
        raise _Refused(error_page(request, principal, 403, "Forbidden", str(exc))) from None
    return chosen, scoped


def _spend_buckets(period: queries.Period, series: dict[str, dict[str, Any]]) -> list[Bucket]:
    out = []
    for key, short in queries.bucket_keys(period):
        row = series.get(key)
        calls = row["calls"] if row else 0
        out.append(Bucket(key, short, (Decimal(row["total_cost"]) if row else Decimal(0),), f"{calls:,} calls"))
    return out


def _token_buckets(period: queries.Period, series: dict[str, dict[str, Any]]) -> list[Bucket]:
    out = []
    for key, short in queries.bucket_keys(period):
        row = series.get(key) or queries.empty_row()
        cached, written = row["cache_read_tokens"], row["cache_write_tokens"]
        parts = (row["input_tokens"] - cached - written, cached, written, row["output_tokens"])
        out.append(Bucket(key, short, tuple(Decimal(p) for p in parts)))
    return out


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, period: str | None = None, project: str | None = None) -> Response:
    token = request.query_params.get("token")
    if token is not None:
        return redeem(request, token)
    principal = current_principal(request)
    if principal is None:
        return to_login(request)
    try:
        chosen, scoped = _context(request, principal, period, project)
    except _Refused as refused:
        return refused.response
    flt = queries.period_filter(chosen, scoped)
    db = database(request)
    rollups.catch_up(db)  # calls the SDK wrote straight into the file
    with db.read() as conn:
        data = queries.overview(conn, flt, chosen, every_project=principal.admin)
    total, series = data.total, data.series
    bucket_word = "hour" if chosen.bucket == "hour" else "day"
    spend_chart = stacked_bars(
        _spend_buckets(chosen, series),
        ["Spend"],
        title=f"Spend per {bucket_word}, {chosen.label.lower()}",
        chart_id="spend-chart",
    )
    token_chart = stacked_bars(
        _token_buckets(chosen, series),
        TOKEN_SERIES,
        title=f"Tokens per {bucket_word}, {chosen.label.lower()}",
        kind="count",
        chart_id="token-chart",
    )
    return page(
        request,
        "overview.html",
        principal,
        section="overview",
        title="Overview",
        period=chosen,
        project=scoped,
        projects=[name for name in data.projects if name is not None],
        total=total,
        series=[(key, series.get(key)) for key, _ in queries.bucket_keys(chosen)],
        spend_chart=spend_chart,
        token_chart=token_chart,
        token_series=TOKEN_SERIES,
        groups=[(dim, title, link, data.groups[dim]) for dim, title, link in OVERVIEW_GROUPS],
        top=data.top,
    )


def _metadata_pairs(request: Request) -> tuple[tuple[str, str], ...]:
    """`meta=key=value` form fields, in addition to the API's `metadata.key=value`."""
    pairs = []
    for raw in request.query_params.getlist("meta"):
        if not raw.strip():
            continue
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not key or '"' in key or "\\" in key:
            raise ValidationError("meta", f"{raw!r} is not key=value (a key without quotes or backslashes)")
        pairs.append((key, value.strip()))
    return tuple(pairs)


def _calls_filter(request: Request) -> CallFilter:
    values = {name: (request.query_params.get(name) or "").strip() or None for name in FILTER_FIELDS}
    flt = call_filter(request, **values)
    return replace(flt, metadata=flt.metadata + _metadata_pairs(request))


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request, cursor: str | None = None, limit: int = PAGE_SIZE) -> Response:
    principal = current_principal(request)
    if principal is None:
        return to_login(request)
    form = {name: request.query_params.get(name, "") for name in FILTER_FIELDS}
    form["meta"] = request.query_params.get("meta", "")
    extra = [(k, v) for k, v in request.query_params.multi_items() if k.startswith("metadata.")]

    def render(status: int = 200, **context: Any) -> Response:
        return page(request, "calls.html", principal, status=status, section="calls", title="Calls",
                    form=form, extra=extra, operations=OPERATIONS, **context)  # fmt: skip

    try:
        flt = _calls_filter(request)
        flt = flt.with_project(principal.scoped_project(flt.equals.get("project")))
        limit = max(1, min(limit, settings(request).max_page_size))
        db = database(request)
        with db.read() as conn:
            records, next_cursor = list_calls(conn, flt, limit=limit, cursor=cursor or None)
            total = None if flt.needs_calls_table else queries.totals(conn, flt)
    except ValidationError as exc:
        return render(400, error=str(exc), records=[], next_link=None, first_link=None, total=None)
    except Forbidden as exc:
        return error_page(request, principal, 403, "Forbidden", str(exc))
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and v != ""]
    next_link = f"/calls?{urlencode([*kept, ('cursor', next_cursor)])}" if next_cursor else None
    first_link = f"/calls?{urlencode(kept)}" if cursor else None
    return render(error=None, records=records, next_link=next_link, first_link=first_link, total=total)


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_page(request: Request, call_id: str) -> Response:
    principal = current_principal(request)
    if principal is None:
        return to_login(request)
    record = None
    evaluations: list[dict[str, Any]] = []
    if "\x00" not in call_id:
        with database(request).read() as conn:
            record = get_call(conn, call_id, project=None if principal.admin else principal.project)
            if record is not None:
                evaluations = results_of(conn, call_id)
    if record is None:
        return error_page(request, principal, 404, "Call not found", f"No call {call_id!r} is visible to you.")
    return page(
        request,
        "call.html",
        principal,
        section="calls",
        title=f"Call {call_id}",
        record=record,
        sections=detail.sections(record),
        json_sections=detail.json_sections(record),
        evaluations=evaluations,
    )


@router.get("/by/{name}", response_class=HTMLResponse)
def breakdown(request: Request, name: str, period: str | None = None, project: str | None = None) -> Response:
    principal = current_principal(request)
    if principal is None:
        return to_login(request)
    if name not in queries.BREAKDOWNS or (name == "project" and not principal.admin):
        return error_page(request, principal, 404, "Not found", f"There is no breakdown by {name!r}.")
    dimension, singular, plural = queries.BREAKDOWNS[name]
    try:
        chosen, scoped = _context(request, principal, period, project)
    except _Refused as refused:
        return refused.response
    flt = queries.period_filter(chosen, scoped)
    db = database(request)
    rollups.catch_up(db)
    with db.read() as conn:
        total = queries.totals(conn, flt)
        rows = queries.grouped(conn, flt, dimension)
        leaders = [r[dimension] for r in rows[: queries.STACKED_GROUPS] if Decimal(r["total_cost"]) > 0]
        stacked = queries.stacked_over_time(conn, flt, chosen, dimension, leaders)
        project_names = [p for p in queries.projects(conn, flt) if p is not None] if principal.admin else []
    has_other = any(queries.OTHER in slot for slot in stacked.values())
    names = [_group_name(v) for v in leaders] + (["Other"] if has_other else [])
    order = [*leaders, queries.OTHER] if has_other else leaders
    buckets = [
        Bucket(key, short, tuple(stacked.get(key, {}).get(group, Decimal(0)) for group in order) or (Decimal(0),))
        for key, short in queries.bucket_keys(chosen)
    ]
    chart = stacked_bars(
        buckets,
        names or ["Spend"],
        title=f"Spend by {singular.lower()} per {chosen.bucket}, {chosen.label.lower()}",
        chart_id="breakdown-chart",
    )
    return page(
        request,
        "breakdown.html",
        principal,
        section=f"by-{name}",
        title=f"{plural}",
        name=name,
        dimension=dimension,
        singular=singular,
        plural=plural,
        period=chosen,
        project=scoped,
        projects=project_names,
        total=total,
        rows=rows,
        chart=chart,
        legend=names,
    )


def _group_name(value: Any) -> str:
    return "(none)" if value is None else str(value)


@router.get("/static/dashboard/{name}")
def static_file(name: str) -> Response:
    return static(name)


__all__ = ["router"]
