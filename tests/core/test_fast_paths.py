"""The hot path's fast constructors and serialisers give exactly what the plain ones give.

Proposed as tests/core/test_fast_paths.py (the SQLite part could live in tests/sinks).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum

import pytest
from hypothesis import given, settings
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
)
from tokentrail.core.attribution import SpanContext, make_span
from tokentrail.core.columns import COLUMN_NAMES, record_json, record_to_row
from tokentrail.core.fields import section_to_dict
from tokentrail.core.record import build_call
from tokentrail.core.sections import build_performance, build_response_metadata
from tokentrail.core.settings import Settings
from tokentrail.sinks.sqlite import INSERT_SQL, SQLiteSink, connect

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def reference_json(obj: object) -> str:
    """What every sink used to write: the dict form, through the stdlib encoder."""
    return json.dumps(obj.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)  # type: ignore[attr-defined]


class Colour(Enum):
    RED = 1


class Level(IntEnum):
    HIGH = 3


# values no constructor checks for, so the serialisers' fallbacks get exercised
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(
        [
            Colour.RED,
            Level.HIGH,
            Decimal("1.5"),
            Decimal("1E-7"),
            PricingStatus.PRICED,
            ModelOperation.CHAT,
            datetime(2020, 1, 1),
            datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=3))),
            datetime(2021, 5, 5, 1, 2, 3, tzinfo=UTC),
            datetime(2021, 5, 5, 1, 2, 3, 7, tzinfo=UTC),
            frozenset({1}),
            ("a", 1),
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
)


def raw(cls: type, values: tuple[object, ...]) -> object:
    """An instance with arbitrary field values, past any validation."""
    obj = object.__new__(cls)
    for name, value in zip(cls.__slots__, values, strict=False):  # type: ignore[attr-defined]
        object.__setattr__(obj, name, value)
    return obj


def raw_of(cls: type) -> st.SearchStrategy[object]:
    return st.tuples(*[odd_values for _ in cls.__slots__]).map(lambda values: raw(cls, values))  # type: ignore[attr-defined]


def outcome(fn: object) -> object:
    try:
        return fn()  # type: ignore[operator]
    except Exception as exc:  # the same failure is part of "the same result"
        return type(exc)


FLAT = (ErrorInfo, PerformanceMetrics, RequestParameters, ResponseMetadata, RateLimitInfo, Attribution, Content)


@settings(max_examples=300)
@given(st.one_of(*[raw_of(cls) for cls in FLAT]))
def test_section_to_dict_and_to_json(section):
    assert outcome(section.to_dict) == outcome(lambda: section_to_dict(section))
    assert outcome(section.to_json) == outcome(lambda: reference_json(section))


@settings(max_examples=300)
@given(raw_of(CostBreakdown) | raw_of(TokenUsage) | raw_of(Units))
def test_cost_usage_units_to_json(obj):
    assert outcome(obj.to_json) == outcome(lambda: reference_json(obj))


@settings(max_examples=300)
@given(raw_of(LLMCall))
def test_record_with_any_top_level_values(call):
    assert outcome(call.to_json) == outcome(lambda: reference_json(call))


@settings(max_examples=300)
@given(
    raw_of(TokenUsage),
    raw_of(Units),
    raw_of(CostBreakdown),
    *[raw_of(cls) for cls in FLAT],
)
def test_record_with_any_section_values(usage, units, cost, error, perf, params, response, limits, who, content):
    call = raw(LLMCall, ("id-1", ModelOperation.CHAT, T0))
    for name, value in (
        ("token_usage", usage), ("units", units), ("cost_metrics", cost), ("error", error),
        ("performance_metrics", perf), ("request_parameters", params), ("response_metadata", response),
        ("rate_limit_info", limits), ("attribution", who), ("content", content),
    ):  # fmt: skip
        object.__setattr__(call, name, value)
    expected = outcome(lambda: reference_json(call))
    assert outcome(call.to_json) == expected
    assert outcome(call.to_json) == expected  # again: the remembered attribution text


@settings(max_examples=200)
@given(
    st.none() | st.integers(0, 10**6),
    st.none() | st.integers(0, 10**6),
    st.booleans(),
    st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.text(max_size=8),
)
def test_realistic_records(input_tokens, output_tokens, failed, duration, text):
    call = LLMCall.new(
        provider=text or None,
        request_model='m"x\n',
        token_usage=TokenUsage.build(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            details={"input_image_tokens": 2} if failed else None,
            other_models={"m": TokenUsage(input_tokens=1)} if failed else None,
        ),
        units=Units(pages=2, seconds=0.5) if failed else Units(),
        cost_metrics=CostBreakdown(
            total_cost=Decimal("0.0001686"), input_cost=Decimal("1E-7"), pricing_status="priced", price_version=text
        ),
        performance_metrics=PerformanceMetrics(total_duration_ms=duration, tokens_per_second=1e20),
        request_parameters=RequestParameters(temperature=0.2, stop_sequences=["a", text]),
        response_metadata=ResponseMetadata(response_id=text or None),
        rate_limit_info=RateLimitInfo(requests_reset_at=datetime.now(UTC), retry_after_ms=1.5),
        attribution=Attribution(user_id=text or None),
        metadata={"k": [1, 2.5, None, {"x": text}], "é": "ü"},
        status=CallStatus.ERROR if failed else "ok",
        error=ErrorInfo(type="E", message=text, http_status=500) if failed else None,
        streaming=failed,
        content=Content(messages=[{"role": "user", "content": text}], result=text),
        completed_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert call.to_json() == reference_json(call) == record_json(call.to_dict())


def test_non_finite_floats_and_huge_ints_match_the_encoder():
    call = LLMCall.new(
        performance_metrics=PerformanceMetrics(total_duration_ms=math.nan, tokens_per_second=math.inf),
        metadata={"big": 2**80, "nan": math.nan},
    )
    assert call.to_json() == reference_json(call)


def test_remembered_attribution_follows_the_object():
    a, b = Attribution(user_id="a"), Attribution(user_id="b")
    for who in (a, a, b, a, None, b, Attribution()):
        call = LLMCall.new(attribution=who)
        assert call.to_json() == reference_json(call)


# ---- build_call is LLMCall(...) ------------------------------------------------------------

BASE = {
    "id": "x",
    "operation": ModelOperation.CHAT,
    "started_at": T0,
    "status": CallStatus.OK,
    "completed_at": None,
    "trace_id": None,
    "parent_id": None,
    "name": None,
    "error": None,
    "attribution": None,
    "metadata": None,
}


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["", "x", 5]),
            "operation": st.sampled_from([ModelOperation.EMBEDDINGS, "chat", "dance"]),
            "status": st.sampled_from([CallStatus.ERROR, "error", "meh"]),
            "started_at": st.sampled_from([T0 + timedelta(days=1), datetime(2025, 1, 2), "x"]),
            "completed_at": st.sampled_from(
                [None, T0 - timedelta(days=1), T0 + timedelta(days=9), datetime(2026, 1, 1), "x"]
            ),
            "token_usage": st.sampled_from([None, TokenUsage(input_tokens=1), {"input_tokens": 1}]),
            "cost_metrics": st.sampled_from([None, CostBreakdown(), "x"]),
            "attribution": st.sampled_from([None, Attribution(user_id="u"), ResponseMetadata()]),
            "metadata": st.sampled_from([None, {"a": 1}, [1]]),
        },
    )
)
def test_build_call_is_the_constructor(changes):
    kwargs = {**BASE, **changes}

    def described(fn):
        try:
            return fn()
        except Exception as exc:
            return (type(exc), str(exc))

    expected = described(lambda: LLMCall(**kwargs))
    got = described(lambda: build_call(*(kwargs.get(name) for name in LLMCall.__slots__)))
    assert got == expected
    if isinstance(got, LLMCall):
        assert type(got) is LLMCall
        assert {n: getattr(got, n) for n in got.__slots__} == {n: getattr(expected, n) for n in expected.__slots__}
        assert got.to_json() == expected.to_json()


def test_fast_built_objects_are_ordinary_frozen_instances():
    call = build_call(*(BASE.get(name) for name in LLMCall.__slots__))
    for obj in (call, build_performance(1.0, None, 2.0), build_response_metadata({"finish_reason": "stop"})):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, obj.__slots__[0], 1)
    assert build_performance(1.0, None, 2.0) == PerformanceMetrics(1.0, None, 2.0)
    assert hash(build_performance(1.0, None, 2.0)) == hash(PerformanceMetrics(1.0, None, 2.0))
    assert build_response_metadata({"finish_reason": "stop"}) == ResponseMetadata(finish_reason="stop")
    with pytest.raises(TypeError):
        build_response_metadata({"bogus": "x"})  # as ResponseMetadata(bogus="x")
    assert make_span("t", "s", 1) == SpanContext("t", "s", 1)
    assert pickle.loads(pickle.dumps(call)) == call and copy.deepcopy(call) == call
    assert call.replace(name="n").name == "n"


# ---- the SQLite sink stores what executemany of record_to_row stored ---------------------------


def test_multi_row_inserts_store_the_same_rows(tmp_path):
    rnd = random.Random(4)
    calls = []
    for i in range(1300):
        kind = rnd.randrange(4)
        calls.append(
            LLMCall.new(
                provider="openai" if kind else None,
                token_usage=TokenUsage.build(input_tokens=i, output_tokens=kind) if kind != 2 else None,
                cost_metrics=CostBreakdown(total_cost=Decimal(i) / 1000, pricing_status="priced")
                if kind == 1
                else None,
                attribution=Attribution(user_id=f"u{i % 3}") if kind == 3 else None,
                streaming=bool(i % 2) if kind else None,
                estimated=True if kind == 3 else None,
                metadata={"i": i, "f": 0.1 * i},
                started_at=T0 + timedelta(seconds=i),
                completed_at=T0 + timedelta(seconds=i, microseconds=i * 7) if kind else None,
            )
        )
    calls += calls[5:40]  # duplicates, some inside the same batch
    rnd.shuffle(calls)
    sink = SQLiteSink(Settings.load(sqlite_path=str(tmp_path / "sink.db")))
    for i in range(0, len(calls), 700):
        sink.write(calls[i : i + 700])
    sink.close()
    reference = connect(tmp_path / "reference.db")
    for i in range(0, len(calls), 700):
        reference.execute("BEGIN")
        reference.executemany(INSERT_SQL, [record_to_row(c) for c in calls[i : i + 700]])
        reference.execute("COMMIT")
    reference.close()
    columns = ", ".join([*COLUMN_NAMES, *(f"typeof({c})" for c in COLUMN_NAMES)])

    def stored(name: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(tmp_path / name)
        try:
            return conn.execute(f"SELECT {columns} FROM calls ORDER BY rowid").fetchall()
        finally:
            conn.close()

    assert len(stored("sink.db")) == 1300
    assert stored("sink.db") == stored("reference.db")
    assert sink.written == 1300 and sink.duplicates == 35


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {1: "a"},
        {"a": 1.5},
        {"a": None, "b": True, "c": False, "d": -3},
        {"a": {"b": 1}},
        {"é\n": 'ü"\\'},
        {None: 1},
    ],
)
def test_metadata_dicts(metadata):
    call = LLMCall.new(metadata=metadata, provider_specific=metadata, response_schema=metadata)
    assert call.to_json() == reference_json(call)
