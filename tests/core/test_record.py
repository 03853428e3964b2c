from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentrail.core import (
    Attribution,
    CallStatus,
    Content,
    CostBreakdown,
    ErrorInfo,
    LLMCall,
    ModelOperation,
    PerformanceMetrics,
    PricingStatus,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
    TokenUsage,
    Units,
    ValidationError,
    uuid7,
)

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def full_record() -> LLMCall:
    return LLMCall(
        id=uuid7(),
        operation=ModelOperation.CHAT,
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=1500),
        trace_id="trace-1",
        parent_id="parent-1",
        provider="openai",
        request_model="gpt-4o",
        provider_model="gpt-4o-2024-08-06",
        status=CallStatus.ERROR,
        error=ErrorInfo(type="RateLimitError", message="slow down", http_status=429),
        token_usage=TokenUsage.build(
            input_tokens=4020, output_tokens=2320, cache_read_tokens=4012, reasoning_tokens=1792
        ),
        units=Units(requests=1),
        cost_metrics=CostBreakdown(
            input_cost=Decimal("0.00002"),
            cache_read_cost=Decimal("0.005015"),
            output_cost=Decimal("0.0232"),
            total_cost=Decimal("0.028235"),
            pricing_status=PricingStatus.PRICED,
            price_version="genai-prices-0.2.3",
        ),
        performance_metrics=PerformanceMetrics(total_duration_ms=1500.0, time_to_first_token_ms=210.5),
        request_parameters=RequestParameters(temperature=0.2, max_tokens=512, stop_sequences=["END"], seed=-3),
        response_metadata=ResponseMetadata(finish_reason="stop", request_id="req_1", service_tier="default"),
        rate_limit_info=RateLimitInfo(requests_limit=500, requests_remaining=499, tokens_reset_at=T0),
        attribution=Attribution(user_id="u1", feature="search", project="p"),
        metadata={"k": "v"},
        response_schema={"type": "object"},
        streaming=True,
        attempt=2,
        content=Content(messages=[{"role": "user", "content": "hi"}], result="hello"),
    )


def test_json_round_trip_is_lossless():
    call = full_record()
    wire = json.loads(json.dumps(call.to_dict()))
    assert LLMCall.from_dict(wire) == call
    assert wire["cost_metrics"]["total_cost"] == "0.028235"  # money travels as a decimal string
    assert wire["started_at"] == "2026-11-01T12:00:00Z"


def test_absent_values_are_omitted_not_zeroed():
    call = LLMCall.new("embeddings", provider="openai")
    wire = call.to_dict()
    assert set(wire) == {"id", "operation", "started_at", "provider", "status"}
    assert call.token_usage is None


def test_sections_are_attributes():
    call = full_record()
    assert call.token_usage.input_tokens == 4020
    assert call.cost_metrics.total_cost == Decimal("0.028235")
    assert call.duration_ms == pytest.approx(1500.0)


def test_uuid7_is_a_time_ordered_version_7_uuid():
    ids = [uuid7() for _ in range(50)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 for u in parsed)
    assert len(set(ids)) == 50
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"operation": "dance"}, "operation"),
        ({"status": "meh"}, "status"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"token_usage": {"input_tokens": 5, "cache_read_tokens": 6}}, "token_usage.cache_read_tokens"),
        ({"token_usage": {"input_tokens": -5}}, "token_usage.input_tokens"),
        ({"cost_metrics": {"total_cost": "ten"}}, "cost_metrics.total_cost"),
        ({"cost_metrics": {"total_cost": "-1"}}, "cost_metrics.total_cost"),
        ({"cost_metrics": {"pricing_status": "free"}}, "cost_metrics.pricing_status"),
        ({"cost_metrics": {"currency": "EUR"}}, "cost_metrics.currency"),
        ({"rate_limit_info": {"requests_limit": "many"}}, "rate_limit_info.requests_limit"),
        ({"request_parameters": {"stop_sequences": "END"}}, "request_parameters.stop_sequences"),
        ({"attribution": {"user_id": 7}}, "attribution.user_id"),
        ({"attribution": {"nickname": "x"}}, "attribution.nickname"),
        ({"surprise": 1}, "surprise"),
        ({"attempt": -1}, "attempt"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"completed_at": "2026-11-01T11:00:00Z"}, "completed_at"),
    ],
)
def test_from_dict_names_the_bad_field(patch, field):
    wire = full_record().to_dict()
    wire.update(patch)
    with pytest.raises(ValidationError) as info:
        LLMCall.from_dict(wire)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize("missing", ["id", "operation", "started_at"])
def test_required_fields(missing):
    wire = full_record().to_dict()
    del wire[missing]
    with pytest.raises(ValidationError) as info:
        LLMCall.from_dict(wire)
    assert info.value.field == missing


def test_naive_and_offset_times_become_utc():
    wire = full_record().to_dict()
    wire["started_at"] = "2026-11-01T14:00:00+02:00"
    wire["completed_at"] = "2026-11-01T12:00:01"
    call = LLMCall.from_dict(wire)
    assert call.started_at == T0
    assert call.completed_at.tzinfo is not None


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
record_keys = st.sampled_from(
    ["id", "operation", "started_at", "token_usage", "cost_metrics", "attribution", "status", "units", "attempt"]
)


@given(st.dictionaries(record_keys, json_values, max_size=8))
def test_from_dict_never_raises_anything_but_validation_errors(data):
    try:
        call = LLMCall.from_dict(data)
    except ValidationError as exc:
        assert exc.field
    else:
        assert LLMCall.from_dict(json.loads(json.dumps(call.to_dict()))) == call
