"""`GET /v1/usage`: totals equal the sums over the stored calls for every grouping and
range, read from the rollups whenever the grouping and filters allow."""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_helpers import ADMIN, T0, make_call, post_calls

from tokentrail.core import LLMCall
from tokentrail.core.columns import to_micros
from tokentrail.server.db import latency
from tokentrail.server.db.models import DAY, HOUR
from tokentrail.server.db.usage import plan, time_label

START = T0 - timedelta(days=3, hours=5)
MIDNIGHT = T0.replace(hour=0)


def _population() -> list[LLMCall]:
    rng = random.Random(7)
    calls = []
    for _ in range(240):
        at = START + timedelta(seconds=rng.randrange(0, 9 * 86_400))
        model = rng.choice(["gpt-4o", "gpt-4o-mini", "o3-mini", None])
        calls.append(
            make_call(
                at=at,
                ms=10 ** rng.uniform(-0.5, 5.2) if rng.random() > 0.05 else None,
                model=model,
                provider_model="gpt-4o-2024-08-06" if model is None else None,
                input_tokens=rng.randrange(100, 5000),
                output_tokens=rng.randrange(5, 800),
                cache_read=rng.choice([None, 0, 100]),
                reasoning=rng.choice([None, 5]),
                project=rng.choice(["alpha", "beta", None]),
                user_id=rng.choice(["ann", "bob", "cy", None]),
                session_id=rng.choice(["s1", "s2", None]),
                tenant_id=rng.choice(["t1", None]),
                feature=rng.choice(["chat", "search"]),
                error=rng.random() < 0.15,
                priced=rng.random() > 0.1,
                metadata={"env": rng.choice(["prod", "dev"])},
            )
        )
    return calls


POPULATION = _population()

KEY: dict[str, Callable[[LLMCall], str | None]] = {
    "provider": lambda c: c.provider,
    "model": lambda c: c.request_model or c.provider_model,
    "project": lambda c: c.attribution.project if c.attribution else None,
    "user_id": lambda c: c.attribution.user_id if c.attribution else None,
    "session_id": lambda c: c.attribution.session_id if c.attribution else None,
    "tenant_id": lambda c: c.attribution.tenant_id if c.attribution else None,
    "feature": lambda c: c.attribution.feature if c.attribution else None,
    "operation": lambda c: c.operation.value,
    "status": lambda c: c.status.value,
    **{k: (lambda c, k=k: time_label(to_micros(c.started_at), k)) for k in ("hour", "day", "week", "month")},
}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def expected_rows(calls: list[LLMCall], group_by: list[str]) -> dict[tuple, dict]:
    groups: dict[tuple, list[LLMCall]] = defaultdict(list)
    for call in calls:
        groups[tuple(KEY[k](call) for k in group_by)].append(call)
    out = {}
    for key, members in groups.items():
        usage = [m.token_usage for m in members]
        out[key] = {
            "calls": len(members),
            "errors": sum(m.status.value == "error" for m in members),
            "unpriced_calls": sum(m.cost_metrics is None for m in members),
            "input_tokens": sum(u.input_tokens or 0 for u in usage),
            "output_tokens": sum(u.output_tokens or 0 for u in usage),
            "cache_read_tokens": sum(u.cache_read_tokens or 0 for u in usage),
            "cache_write_tokens": sum(u.cache_write_tokens or 0 for u in usage),
            "reasoning_tokens": sum(u.reasoning_tokens or 0 for u in usage),
            "total_cost": sum((m.cost_metrics.total_cost for m in members if m.cost_metrics), Decimal(0)),
            "durations": [m.duration_ms for m in members if m.duration_ms is not None],
        }
    return out


def check(client, group_by: list[str], calls: list[LLMCall], **params: str) -> list[str]:
    response = client.get("/v1/usage", params={"group_by": ",".join(group_by), **params}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = expected_rows(calls, group_by)
    got = {tuple(row[k] for k in group_by): row for row in body["rows"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        for name in ("calls", "errors", "unpriced_calls", "input_tokens", "output_tokens", "cache_read_tokens"):
            assert row[name] == want[name], (key, name)
        assert row["cache_write_tokens"] == want["cache_write_tokens"]
        assert row["reasoning_tokens"] == want["reasoning_tokens"]
        assert Decimal(row["total_cost"]) == want["total_cost"], key
        for field, q in (("p50_ms", 0.5), ("p95_ms", 0.95)):
            if not want["durations"]:
                assert row[field] is None
                continue
            exact = nearest_rank(want["durations"], q)
            if 1 <= exact < 1e6:
                assert abs(row[field] - exact) <= exact * latency.MAX_RELATIVE_ERROR + 1e-3, (key, field)
    return body["sources"]


def in_range(since: datetime | None, until: datetime | None) -> list[LLMCall]:
    return [
        c for c in POPULATION if (since is None or c.started_at >= since) and (until is None or c.started_at < until)
    ]


@pytest.fixture
def loaded(client):
    for start in range(0, len(POPULATION), 100):  # several batches, as the SDK sends them
        post_calls(client, POPULATION[start : start + 100])
    return client


GROUPINGS = [
    [],
    ["model"],
    ["model", "day"],
    ["provider", "model", "hour"],
    ["user_id", "day"],
    ["project", "feature", "week"],
    ["tenant_id", "status", "month"],
    ["operation"],
    ["session_id", "day"],
]
RANGES = [
    (None, None),
    (MIDNIGHT - timedelta(days=2), MIDNIGHT + timedelta(days=3)),  # whole days
    (T0 - timedelta(days=2), T0 + timedelta(days=3)),  # whole hours
    (T0 - timedelta(days=1, minutes=17), T0 + timedelta(days=2, hours=3, seconds=5)),  # ragged edges
    (T0 + timedelta(minutes=7), T0 + timedelta(minutes=50)),  # inside one hour
    (T0 + timedelta(hours=2), None),
    (None, T0 - timedelta(hours=7, minutes=1)),
]


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: ",".join(g) or "total")
def test_usage_equals_the_sum_over_calls(loaded, group_by):
    for since, until in RANGES:
        params = {}
        if since:
            params["since"] = since.isoformat()
        if until:
            params["until"] = until.isoformat()
        check(loaded, group_by, in_range(since, until), **params)


def test_filters_apply_to_usage(loaded):
    subset = [c for c in POPULATION if KEY["user_id"](c) == "ann" and KEY["model"](c) == "gpt-4o"]
    assert check(loaded, ["day"], subset, user_id="ann", model="gpt-4o") == ["rollup_day"]
    by_session = [c for c in POPULATION if KEY["session_id"](c) == "s2"]
    assert check(loaded, ["model"], by_session, session_id="s2") == ["calls"]
    prod = [c for c in POPULATION if c.metadata == {"env": "prod"}]
    assert check(loaded, ["feature"], prod, **{"metadata.env": "prod"}) == ["calls"]
    rich = [c for c in POPULATION if c.cost_metrics and c.cost_metrics.total_cost >= Decimal("0.005")]
    assert check(loaded, ["provider"], rich, min_cost="0.005") == ["calls"]


def test_aggregates_read_the_smallest_rollup_that_answers(loaded):
    since, until = MIDNIGHT - timedelta(days=2), MIDNIGHT + timedelta(days=3)
    window = {"since": since.isoformat(), "until": until.isoformat()}
    calls = in_range(since, until)
    assert check(loaded, ["model", "day"], calls, **window) == ["rollup_day_core"]
    assert check(loaded, ["user_id", "day"], calls, **window) == ["rollup_day"]
    assert check(loaded, ["model", "hour"], calls, **window) == ["rollup_hour"]
    assert check(loaded, ["session_id"], calls, **window) == ["calls"]
    ragged = {"since": (since + timedelta(minutes=90, seconds=1)).isoformat(), "until": until.isoformat()}
    sources = check(loaded, ["model", "week"], in_range(since + timedelta(minutes=90, seconds=1), until), **ragged)
    assert sorted(sources) == ["calls", "rollup_day_core", "rollup_hour"]


def test_time_buckets_are_labelled_by_their_start(client):
    post_calls(client, [make_call(at=T0 + timedelta(hours=3, minutes=4))])
    labels = {}
    for key in ("hour", "day", "week", "month"):
        (row,) = client.get("/v1/usage", params={"group_by": key}, headers=ADMIN).json()["rows"]
        labels[key] = row[key]
    assert labels == {"hour": "2025-10-15T13:00:00Z", "day": "2025-10-15", "week": "2025-10-13", "month": "2025-10-01"}


@pytest.mark.parametrize(
    ("group_by", "reason"),
    [("model,colour", "'colour'"), ("day,week", "at most one"), ("model,model", "twice")],
)
def test_bad_group_by_is_400(client, group_by, reason):
    response = client.get("/v1/usage", params={"group_by": group_by}, headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "group_by"
    assert reason in response.json()["detail"][0]["reason"]


def test_empty_range_has_no_rows(loaded):
    params = {"since": T0.isoformat(), "until": (T0 - timedelta(hours=1)).isoformat()}
    assert loaded.get("/v1/usage", params=params, headers=ADMIN).json()["rows"] == []


_TIMES = st.integers(min_value=0, max_value=40 * DAY)


@given(since=st.none() | _TIMES, until=st.none() | _TIMES, hourly=st.booleans())
def test_plan_partitions_the_range_exactly(since, until, hourly):
    parts = plan(since, until, hourly=hourly)
    lo_all = -(10**18) if since is None else since
    hi_all = 10**18 if until is None else until
    spans = sorted((-(10**18) if lo is None else lo, 10**18 if hi is None else hi, src) for src, lo, hi in parts)
    if lo_all >= hi_all:
        return
    assert spans[0][0] == lo_all and spans[-1][1] == hi_all
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        assert end == start  # contiguous, no overlap
    for lo, hi, src in spans:
        if src == "hour":
            assert lo % HOUR == 0 or lo == -(10**18)
            assert hi % HOUR == 0 or hi == 10**18
        if src == "day":
            assert not hourly
            assert lo % DAY == 0 or lo == -(10**18)
            assert hi % DAY == 0 or hi == 10**18


@given(
    st.lists(st.floats(min_value=0, max_value=3e6, allow_nan=False), min_size=1, max_size=60),
    st.sampled_from([0.5, 0.95]),
)
def test_histogram_quantile_is_within_its_documented_error(durations, q):
    counts = [0] * latency.BINS
    for d in durations:
        counts[latency.bin_of(d)] += 1
    exact = nearest_rank(durations, q)
    got = latency.quantile(counts, q)
    if exact < 1:
        assert got == 0.5
    elif exact >= 1e6:
        assert got == 1e6
    else:
        assert abs(got - exact) <= exact * latency.MAX_RELATIVE_ERROR + 1e-3
