"""The stored-row description shared by the SQLite sink and the server."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from genai_prices.data_snapshot import get_snapshot
from hypothesis import given
from hypothesis import strategies as st

from tokentrail.core import (
    ATTRIBUTION_FIELDS,
    Attribution,
    CostBreakdown,
    ErrorInfo,
    LLMCall,
    PricingStatus,
    TokenUsage,
    ValidationError,
)
from tokentrail.core.columns import (
    ATTRIBUTION_COLUMNS,
    COLUMN_NAMES,
    COLUMNS,
    INDEXES,
    MAX_PICO,
    ColumnType,
    from_micros,
    from_pico,
    record_to_columns,
    record_to_row,
    to_micros,
    to_pico,
)

STARTED = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def full_call() -> LLMCall:
    return LLMCall.new(
        "chat",
        trace_id="t-1",
        parent_id="p-1",
        provider="anthropic",
        request_model="claude-sonnet-4",
        provider_model="claude-sonnet-4-20250514",
        name="answer",
        status="error",
        error=ErrorInfo(type="RateLimitError", message="slow down", http_status=429),
        started_at=STARTED,
        completed_at=STARTED + timedelta(milliseconds=1234, microseconds=5),
        token_usage=TokenUsage.build(
            input_tokens=1500, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=200, reasoning_tokens=50
        ),
        cost_metrics=CostBreakdown(total_cost=Decimal("0.0123456789"), pricing_status=PricingStatus.PRICED),
        attribution=Attribution(**{name: f"{name}-value" for name in ATTRIBUTION_FIELDS}),
        metadata={"k": "v", "n": 1},
        streaming=True,
        estimated=False,
        attempt=2,
    )


def test_columns_cover_the_record_and_name_every_dimension():
    assert COLUMNS[0].name == "id" and COLUMNS[0].primary_key
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    assert ATTRIBUTION_COLUMNS == ATTRIBUTION_FIELDS  # the record's attribution, all of it
    for name in ("started_at", "completed_at", "total_cost", "input_tokens", "total_tokens"):
        assert next(c for c in COLUMNS if c.name == name).type is ColumnType.BIGINT
    assert next(c for c in COLUMNS if c.name == "record").type is ColumnType.JSON
    indexed = {index.columns[0] for index in INDEXES}
    assert {"started_at", "provider", "user_id", "tenant_id", "feature", "project", "session_id", "status"} <= indexed
    for index in INDEXES:
        assert set(index.columns) <= set(COLUMN_NAMES), index


def test_row_holds_the_record_values():
    call = full_call()
    row = record_to_columns(call)
    assert len(record_to_row(call)) == len(COLUMNS)
    assert row["id"] == call.id
    assert (row["trace_id"], row["parent_id"], row["operation"], row["status"]) == ("t-1", "p-1", "chat", "error")
    assert (row["provider"], row["request_model"], row["provider_model"], row["name"]) == (
        "anthropic",
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
        "answer",
    )
    assert row["error_type"] == "RateLimitError"
    assert row["started_at"] == calendar.timegm(STARTED.timetuple()) * 1_000_000 + 890123
    assert row["completed_at"] - row["started_at"] == 1_234_005
    assert row["duration_ms"] == pytest.approx(1234.005)
    tokens = [row[n] for n in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")]
    assert tokens == [1500, 300, 1000, 200]
    assert (row["reasoning_tokens"], row["total_tokens"]) == (50, 1800)
    assert row["total_cost"] == 12_345_678_900  # 0.0123456789 USD in pico-USD
    assert row["pricing_status"] == "priced"
    for name in ATTRIBUTION_FIELDS:
        assert row[name] == f"{name}-value"
    assert (row["estimated"], row["streaming"], row["attempt"]) == (False, True, 2)
    # the full record round-trips, exact money and times included
    assert LLMCall.from_dict(json.loads(row["record"])) == call
    assert json.loads(row["record"])["cost_metrics"]["total_cost"] == "0.0123456789"


def test_absent_values_are_null_not_zero():
    row = record_to_columns(LLMCall.new("embeddings", started_at=STARTED))
    for name in (*COLUMN_NAMES[4:8], "completed_at", "duration_ms", "total_cost", "pricing_status", "input_tokens"):
        assert row[name] is None, name
    assert row["estimated"] is None and row["attempt"] is None


def test_unpriced_call_keeps_null_cost():
    call = LLMCall.new(cost_metrics=CostBreakdown(pricing_status=PricingStatus.UNPRICED))
    row = record_to_columns(call)
    assert row["total_cost"] is None and row["pricing_status"] == "unpriced"


def test_times_are_exact_microseconds_and_naive_means_utc():
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    assert to_micros(datetime(2025, 1, 1)) == to_micros(datetime(2025, 1, 1, tzinfo=UTC))
    far = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_micros(to_micros(far)) == far
    assert from_micros(to_micros(STARTED)) == STARTED


def test_money_rounds_half_even_below_a_pico_and_refuses_overflow():
    assert to_pico(Decimal("1")) == 10**12
    assert to_pico(Decimal("2.5E-12")) == 2
    assert to_pico(Decimal("3.5E-12")) == 4
    assert to_pico(Decimal("0.0000000000014999")) == 1
    assert from_pico(to_pico(Decimal("9223372.036854775807"))) == Decimal("9223372.036854775807")
    assert to_pico(Decimal("9223372.036854775807")) == MAX_PICO
    with pytest.raises(ValidationError) as err:
        to_pico(Decimal("9223372.036854775808"))
    assert err.value.field == "cost_metrics.total_cost"


@given(
    price=st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False),
    tokens=st.integers(min_value=0, max_value=10**9),
)
def test_token_cost_at_six_decimal_prices_is_exact(price, tokens):
    cost = price * tokens / Decimal(10**6)
    assert from_pico(to_pico(cost)) == cost


def _catalog_prices() -> list[Decimal]:
    """Every Decimal in the bundled genai-prices catalog (per-Mtok prices)."""
    found: list[Decimal] = []
    seen: set[int] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, Decimal):
            found.append(obj)
            return
        if isinstance(obj, str | int | float | bool | type(None)) or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            for item in obj:
                walk(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item)
        else:
            for name in list(getattr(obj, "__dict__", {})) or list(getattr(obj, "__slots__", ())):
                walk(getattr(obj, name, None))

    walk(get_snapshot().providers)
    return found


def test_catalog_token_costs_are_exact_in_pico_usd():
    prices = _catalog_prices()
    assert len(prices) > 1000
    short = [p for p in prices if -p.as_tuple().exponent <= 6]
    # the few catalog prices with float artefacts (e.g. 0.18000000000000002) are rounded
    assert len(short) > 0.99 * len(prices)
    for price in prices:
        for tokens in (1, 7, 123_457):
            cost = price * tokens / Decimal(10**6)
            error = abs(from_pico(to_pico(cost)) - cost)
            if -price.as_tuple().exponent <= 6:
                assert error == 0, price
            else:
                assert error <= Decimal("0.5E-12"), price
