"""`GET /metrics` over HTTP on SQLite and PostgreSQL: the call series equal sums over the
stored calls, the duration histogram matches the calls' durations, ingest counters count what
was ingested, project keys see only their project, and two instances sharing one database
report the same cluster-wide totals."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import ADMIN, T0, make_call, post_calls, project_key

from tokentrail.server import create_app
from tokentrail.server.metrics import BUCKET_BOUNDS, FLUSH_SECONDS


def scrape(client, headers=ADMIN) -> dict[str, list]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples, name, **labels) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def sample_calls():
    return [
        make_call(model="gpt-4o", input_tokens=1000, output_tokens=200, cache_read=400, ms=120.0),
        make_call(model="gpt-4o", input_tokens=3000, output_tokens=50, ms=2500.0, at=T0 + timedelta(days=1)),
        make_call(model="gpt-4o", input_tokens=10, output_tokens=0, error=True, ms=31.0),
        make_call(model="o3-mini", input_tokens=500, output_tokens=900, reasoning=700, ms=9000.0, project="beta"),
        make_call(model="my-private-model", input_tokens=100, output_tokens=10, ms=None, operation="text_completion"),
        make_call(provider="anthropic", model="claude-3-5-haiku-latest", input_tokens=70, output_tokens=7, ms=0.4),
    ]


def test_call_series_equal_the_stored_calls(client):
    calls = sample_calls()
    post_calls(client, calls)
    samples = scrape(client)

    for call in calls:
        labels = {
            "model": call.request_model,
            "provider": call.provider,
            "operation": call.operation.value,
            "status": call.status.value,
        }
        same = [
            c
            for c in calls
            if (c.request_model, c.provider, c.operation.value, c.status.value) == tuple(labels.values())
        ]
        usage = [c.token_usage for c in same]
        expected = {
            "input": sum(u.input_tokens or 0 for u in usage),
            "output": sum(u.output_tokens or 0 for u in usage),
            "cache_read": sum(u.cache_read_tokens or 0 for u in usage),
            "cache_write": sum(u.cache_write_tokens or 0 for u in usage),
            "reasoning": sum(u.reasoning_tokens or 0 for u in usage),
        }
        expected["total"] = expected["input"] + expected["output"]
        for token_type, value in expected.items():
            assert total(samples, "tokentrail_tokens_total", token_type=token_type, **labels) == value
        priced = [c.cost_metrics.total_cost for c in same if c.cost_metrics and c.cost_metrics.total_cost is not None]
        assert total(samples, "tokentrail_cost_usd_total", **labels) == float(sum(priced, Decimal(0)))
        assert total(samples, "tokentrail_calls_total", **labels) == len(same)
        assert total(samples, "tokentrail_unpriced_calls_total", **labels) == len(same) - len(priced)

    assert total(samples, "tokentrail_unpriced_calls_total") == 1  # my-private-model
    assert total(samples, "tokentrail_calls_total", status="error") == 1
    everything = sum(c.cost_metrics.total_cost for c in calls if c.cost_metrics.total_cost is not None)
    assert abs(total(samples, "tokentrail_cost_usd_total") - float(everything)) < 1e-12


def test_duration_histogram_matches_the_durations(client):
    calls = sample_calls()
    post_calls(client, calls)
    samples = scrape(client)
    durations = [c.duration_ms for c in calls if c.duration_ms is not None]
    buckets = {}
    for s in samples["tokentrail_request_duration_ms_bucket"]:
        buckets[s.labels["le"]] = buckets.get(s.labels["le"], 0) + s.value
    bounds = [float(le) for le in buckets if le != "+Inf"]
    assert len(bounds) == len(BUCKET_BOUNDS) and all(
        abs(a - b) < 1e-3 * b for a, b in zip(bounds, BUCKET_BOUNDS, strict=True)
    )
    for le, count in buckets.items():
        bound = float("inf") if le == "+Inf" else float(le)
        # durations on the exact bound land in the next bucket (half-open latency bins)
        assert count == sum(1 for d in durations if d < bound or (bound == float("inf"))), le
    assert total(samples, "tokentrail_request_duration_ms_count") == len(durations) == 5
    assert "tokentrail_request_duration_ms_sum" not in samples  # the rollups keep no sums
    # cumulative per series
    series: dict[tuple, list[float]] = {}
    for s in samples["tokentrail_request_duration_ms_bucket"]:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        series.setdefault(key, []).append(s.value)
    assert all(values == sorted(values) for values in series.values())


def test_ingest_counters(client):
    calls = [make_call() for _ in range(3)]
    post_calls(client, calls)
    post_calls(client, calls)  # all duplicates
    bad = [c.to_dict() for c in (make_call(), make_call(), make_call())]
    bad[0]["token_usage"] = {"input_tokens": -1}
    bad[2]["operation"] = "dance"
    refused = client.post("/v1/calls", json={"calls": bad}, headers=ADMIN)
    assert refused.status_code == 400
    trace = {"model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 2}
    assert client.post("/traces", json=trace, headers=ADMIN).status_code == 201
    assert (
        client.post("/v1/calls", json={"calls": []}, headers={"Authorization": "Bearer tt_nope-nope-nope"}).status_code
        == 401
    )

    samples = scrape(client)
    records = {s.labels["result"]: s.value for s in samples["tokentrail_ingest_records_total"]}
    assert records == {"accepted": 4.0, "duplicate": 3.0, "rejected": 2.0}
    requests = {
        (s.labels["endpoint"], s.labels["status_code"]): s.value for s in samples["tokentrail_ingest_requests_total"]
    }
    assert requests == {
        ("/v1/calls", "200"): 2,
        ("/v1/calls", "400"): 1,
        ("/v1/calls", "401"): 1,
        ("/traces", "201"): 1,
    }
    # the gets did not count; a second scrape reads the same totals
    assert scrape(client)["tokentrail_ingest_records_total"] == samples["tokentrail_ingest_records_total"]


def test_project_keys_see_their_project_only(client):
    calls = sample_calls()
    post_calls(client, calls)
    beta = project_key(client.app, "beta")
    samples = scrape(client, beta)
    assert {s.labels["model"] for s in samples["tokentrail_calls_total"]} == {"o3-mini"}
    assert total(samples, "tokentrail_tokens_total", token_type="reasoning") == 700
    assert "tokentrail_ingest_requests_total" not in samples  # server-wide, admin only
    assert client.get("/metrics").status_code == 401
    empty = scrape(client, project_key(client.app, "nobody"))
    assert "tokentrail_calls_total" not in empty


def test_two_instances_on_one_database_report_the_same_totals(settings):
    first_calls = [make_call(model="gpt-4o", at=T0 + timedelta(minutes=i)) for i in range(4)]
    second_calls = [make_call(model="gpt-4o-mini", at=T0 + timedelta(minutes=i)) for i in range(3)]
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        post_calls(one, first_calls)
        post_calls(two, second_calls)
        post_calls(two, first_calls[:2])  # a retry landing on the other instance: duplicates
        a = scrape(one)
        assert total(a, "tokentrail_calls_total") == 7
        assert total(a, "tokentrail_tokens_total", token_type="input") == 7000
        # instance two's ingest counts reach the database within FLUSH_SECONDS, unscraped
        deadline = time.monotonic() + FLUSH_SECONDS + 5
        while True:
            a = scrape(one)
            records = {s.labels["result"]: s.value for s in a["tokentrail_ingest_records_total"]}
            if records["accepted"] == 7 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert records == {"accepted": 7, "duplicate": 2, "rejected": 0}
        b = scrape(two)
        for name in ("tokentrail_tokens_total", "tokentrail_cost_usd_total", "tokentrail_ingest_records_total"):
            assert sorted((s.labels.items(), s.value) for s in a[name]) == sorted(
                (s.labels.items(), s.value) for s in b[name]
            )
        assert total(b, "tokentrail_ingest_requests_total", endpoint="/v1/calls", status_code="200") == 3
