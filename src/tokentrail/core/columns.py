"""The one description of the stored `calls` table, shared by the SDK's SQLite sink and the
collector server (which maps it to SQLAlchemy models and Alembic migrations).

Plain data plus one pure function, no SQL dialect: each column has a dialect-neutral type
(`ColumnType`) that a storage layer maps to its own (`BIGINT` -> SQLite `INTEGER`,
`JSON` -> SQLite `TEXT` or PostgreSQL `JSONB`, `BOOLEAN` -> SQLite `INTEGER` 0/1).

Conventions of the stored row:
- `id` is the primary key and the idempotency key: a second insert of the same id is a no-op.
- `started_at` / `completed_at` are integer **microseconds since the Unix epoch, UTC**, so
  time-range scans compare integers; the ISO 8601 strings stay inside `record`.
- `total_cost` is integer **pico-USD** (1e-12 USD). Every catalog price with at most six
  decimals per million tokens is a multiple of 1e-12 USD per token, so token costs are exact;
  a cost with finer precision (e.g. a provider-reported figure with 13+ decimals) is rounded
  half-even to the nearest pico-USD. The exact decimal string stays in `record`
  (`cost_metrics.total_cost`), which remains the source of truth. BIGINT holds up to about
  9.2 million USD per call.
- `record` is the full `LLMCall.to_dict()` JSON text: `LLMCall.from_dict(json.loads(record))`
  gives the call back. Indexed columns are copies of its values, for filters and grouping.
- Absent values are NULL, never 0 (SPEC §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum
from typing import Any

from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import json_text
from tokentrail.core.record import LLMCall

TABLE = "calls"
META_TABLE = "tokentrail_meta"  # key/value rows; `schema_version` lets the server's migrations adopt a file
SCHEMA_VERSION = 1

PICO_PER_USD = 10**12
MAX_PICO = 2**63 - 1  # a signed 64-bit column
_PICO = Decimal(1).scaleb(-12)
_MONEY_CONTEXT = Context(prec=60)  # wide enough that quantize never overflows before the range check
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"  # fits 32 bits (attempt)
    BIGINT = "bigint"  # 64-bit integers: token counts, microsecond times, pico-USD
    FLOAT = "float"  # double precision
    BOOLEAN = "boolean"
    JSON = "json"  # a JSON document, stored as text where the dialect has no JSON type


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    primary_key: bool = False
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str, ...]


_T, _I, _B, _F, _BOOL, _J = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.BIGINT,
    ColumnType.FLOAT,
    ColumnType.BOOLEAN,
    ColumnType.JSON,
)

ATTRIBUTION_COLUMNS: tuple[str, ...] = (
    "project",
    "user_id",
    "session_id",
    "tenant_id",
    "feature",
    "environment",
    "service_name",
    "workflow",
    "event_id",
    "customer_id",
)

TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
)

# The order here is the order of `record_to_row`'s tuple.
COLUMNS: tuple[Column, ...] = (
    Column("id", _T, nullable=False, primary_key=True, doc="UUIDv7 made by the SDK; idempotency key"),
    Column("trace_id", _T),
    Column("parent_id", _T),
    Column("operation", _T, nullable=False),
    Column("provider", _T, doc="normalized gen_ai.provider.name"),
    Column("request_model", _T),
    Column("provider_model", _T, doc="the model the response names"),
    Column("name", _T, doc="tool, agent or workflow name"),
    Column("status", _T, nullable=False, doc="ok | error"),
    Column("error_type", _T),
    Column("started_at", _B, nullable=False, doc="microseconds since epoch, UTC"),
    Column("completed_at", _B, doc="microseconds since epoch, UTC"),
    Column("duration_ms", _F),
    *(Column(name, _B) for name in TOKEN_COLUMNS),
    Column("total_cost", _B, doc="pico-USD (1e-12 USD); exact decimal string in record"),
    Column("pricing_status", _T),
    *(Column(name, _T) for name in ATTRIBUTION_COLUMNS),
    Column("estimated", _BOOL),
    Column("streaming", _BOOL),
    Column("attempt", _I),
    Column("record", _J, nullable=False, doc="LLMCall.to_dict() as JSON text"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

# Dimension indexes lead with the dimension and end with started_at, so "this user over
# this period" is one index range; they also serve plain equality on the dimension.
INDEXES: tuple[Index, ...] = (
    Index("ix_calls_started_at", ("started_at",)),
    Index("ix_calls_provider_model", ("provider", "request_model", "started_at")),
    Index("ix_calls_user_id", ("user_id", "started_at")),
    Index("ix_calls_tenant_id", ("tenant_id", "started_at")),
    Index("ix_calls_feature", ("feature", "started_at")),
    Index("ix_calls_project", ("project", "started_at")),
    Index("ix_calls_session_id", ("session_id", "started_at")),
    Index("ix_calls_status", ("status", "started_at")),
)

# The SDK's local SQLite file keeps only the time index. The file is written on the host's
# background thread, where each secondary index costs ~0.7 µs per record, and a local file
# is small enough for reports to filter by scanning a time range. The server's migrations
# create the other INDEXES (same names) when they adopt such a file.
LOCAL_INDEXES: tuple[Index, ...] = (INDEXES[0],)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch (UTC), exact (no float on the way). Naive times are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    seconds, micros = divmod(value, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


def to_pico(amount: Decimal) -> int:
    """USD as integer pico-USD, rounded half-even below 1e-12 (see module docstring)."""
    if type(amount) is Decimal and amount.is_finite():
        # Exact when the amount has at most 12 decimals (every catalog price does): then its
        # reduced fraction's denominator divides 10**12. Otherwise round as below.
        numerator, denominator = amount.as_integer_ratio()
        if not PICO_PER_USD % denominator:
            pico = numerator * (PICO_PER_USD // denominator)
            if pico <= MAX_PICO:
                return pico
    with localcontext(_MONEY_CONTEXT):
        pico = int(amount.quantize(_PICO, rounding=ROUND_HALF_EVEN).scaleb(12))
    if pico > MAX_PICO:
        raise ValidationError("cost_metrics.total_cost", f"{amount} USD exceeds the storable maximum per call")
    return pico


def from_pico(value: int) -> Decimal:
    return Decimal(value).scaleb(-12)


def record_json(data: dict[str, Any]) -> str:
    """Compact JSON of a record dict. Free-form metadata that JSON cannot hold (a datetime,
    a set) is written through `str` rather than failing the whole record.

    `LLMCall.to_json()` gives the same text as `record_json(call.to_dict())`, faster."""
    return json_text(data)


def record_to_row(call: LLMCall, data: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The row of `calls` for one record, in `COLUMNS` order.

    `data` may pass `call.to_dict()` when the caller already has it (saves building it twice).
    """
    text = call.to_json() if data is None else json_text(data)
    usage = call.token_usage
    cost = call.cost_metrics
    attribution = call.attribution
    started = call.started_at
    completed = call.completed_at
    total_cost = cost.total_cost if cost is not None else None
    error = call.error
    if usage is not None:
        tokens: tuple[int | None, ...] = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
            usage.total_tokens,
        )
    else:
        tokens = (None,) * 6
    if attribution is not None:
        attr: tuple[str | None, ...] = (
            attribution.project,
            attribution.user_id,
            attribution.session_id,
            attribution.tenant_id,
            attribution.feature,
            attribution.environment,
            attribution.service_name,
            attribution.workflow,
            attribution.event_id,
            attribution.customer_id,
        )
    else:
        attr = (None,) * 10
    return (
        call.id,
        call.trace_id,
        call.parent_id,
        call.operation.value,
        call.provider,
        call.request_model,
        call.provider_model,
        call.name,
        call.status.value,
        error.type if error is not None else None,
        to_micros(started),
        to_micros(completed) if completed is not None else None,
        (completed - started).total_seconds() * 1000.0 if completed is not None else None,  # call.duration_ms
        *tokens,
        to_pico(total_cost) if total_cost is not None else None,
        cost.pricing_status.value if cost is not None else None,
        *attr,
        call.estimated,
        call.streaming,
        call.attempt,
        text,
    )


def record_to_columns(call: LLMCall) -> dict[str, Any]:
    """The same row as a column-name -> value dict (for ORMs and readable tests)."""
    return dict(zip(COLUMN_NAMES, record_to_row(call), strict=True))


__all__ = [
    "ATTRIBUTION_COLUMNS",
    "COLUMNS",
    "COLUMN_NAMES",
    "INDEXES",
    "LOCAL_INDEXES",
    "MAX_PICO",
    "META_TABLE",
    "PICO_PER_USD",
    "SCHEMA_VERSION",
    "TABLE",
    "TOKEN_COLUMNS",
    "Column",
    "ColumnType",
    "Index",
    "from_micros",
    "from_pico",
    "record_json",
    "record_to_columns",
    "record_to_row",
    "to_micros",
    "to_pico",
]
