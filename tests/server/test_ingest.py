"""`POST /v1/calls`: idempotent batch ingest, field errors, all-or-nothing, gzip, size limit."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, T0, make_call, post_calls, project_key

from tokentrail.core import LLMCall
from tokentrail.server import ServerSettings, create_app


def listed(client: TestClient, **params: str) -> list[dict]:
    response = client.get("/v1/calls", params={"limit": "1000", **params}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["calls"]


def test_batch_is_stored_once_and_read_back_unchanged(client):
    calls = [make_call(at=T0 + timedelta(seconds=i), user_id=f"u{i}") for i in range(5)]
    assert post_calls(client, calls) == {"accepted": 5, "duplicates": 0}
    # the same batch again, plus one new record: only the new one is stored
    extra = make_call(at=T0 + timedelta(minutes=5))
    assert post_calls(client, [*calls, extra]) == {"accepted": 1, "duplicates": 5}
    stored = {r["id"]: r for r in listed(client)}
    assert set(stored) == {c.id for c in [*calls, extra]}
    for call in calls:
        assert LLMCall.from_dict(stored[call.id]) == call
        assert stored[call.id] == call.to_dict()


def test_a_repeated_id_inside_one_batch_counts_as_a_duplicate(client):
    call = make_call()
    assert post_calls(client, [call, call, call]) == {"accepted": 1, "duplicates": 2}
    usage = client.get("/v1/usage", headers=ADMIN).json()["rows"]
    assert usage[0]["calls"] == 1


def test_one_bad_record_refuses_the_whole_request_naming_the_field(client):
    good = [make_call(at=T0 + timedelta(seconds=i)).to_dict() for i in range(4)]
    bad = make_call().to_dict()
    bad["token_usage"] = {"input_tokens": 10, "cache_read_tokens": 50}
    response = client.post("/v1/calls", json={"calls": [*good[:3], bad, good[3]]}, headers=ADMIN)
    assert response.status_code == 400
    (error,) = response.json()["detail"]
    assert error["field"] == "calls[3].token_usage.cache_read_tokens"
    assert "input_tokens" in error["reason"]
    assert listed(client) == []
    assert client.get("/v1/usage", headers=ADMIN).json()["rows"] == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("id"), "calls[0].id"),
        (lambda r: r.update(operation="dance"), "calls[0].operation"),
        (lambda r: r.update(started_at="yesterday"), "calls[0].started_at"),
        (lambda r: r.update(surprise=1), "calls[0].surprise"),
        (lambda r: r["token_usage"].update(output_tokens=-1), "calls[0].token_usage.output_tokens"),
        (lambda r: r["cost_metrics"].update(total_cost="9999999999"), "calls[0].cost_metrics.total_cost"),
        (lambda r: r.update(metadata={"note": "a\x00b"}), "calls[0].record"),
        (lambda r: r["token_usage"].update(input_tokens=2**64, total_tokens=None), "calls[0].token_usage.input_tokens"),
        (lambda r: r.update(attempt=2**40), "calls[0].attempt"),
    ],
)
def test_field_errors_name_the_field(client, mutate, field):
    record = make_call().to_dict()
    mutate(record)
    response = client.post("/v1/calls", json={"calls": [record]}, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["field"] == field
    assert response.json()["detail"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "calls"),
        (b'{"calls": {"id": 1}}', "calls"),
        (b'{"calls": [17]}', "calls[0].record"),
        (
            b'{"calls": [{"id": "x", "operation": "chat", "started_at": "2025-01-01T00:00:00Z", "name": "\\ud800"}]}',
            "calls[0].record",
        ),
    ],
)
def test_malformed_bodies_are_400_with_a_field(client, body, field):
    response = client.post("/v1/calls", content=body, headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == field


def test_gzip_bodies_are_accepted(client):
    calls = [make_call(at=T0 + timedelta(seconds=i)) for i in range(20)]
    body = gzip.compress(json.dumps({"calls": [c.to_dict() for c in calls]}).encode())
    headers = {**ADMIN, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = client.post("/v1/calls", content=body, headers=headers)
    assert response.json() == {"accepted": 20, "duplicates": 0}
    assert len(listed(client)) == 20
    broken = client.post("/v1/calls", content=body[:-12], headers=headers)
    assert broken.status_code == 400 and broken.json()["detail"][0]["field"] == "body"
    other = client.post("/v1/calls", content=body, headers={**headers, "Content-Encoding": "br"})
    assert other.status_code == 415


def test_body_size_limit_applies_before_and_after_decompression(db_url):
    settings = ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY, max_body_bytes=20_000)
    with TestClient(create_app(settings)) as client:
        small = [make_call(at=T0 + timedelta(seconds=i)) for i in range(5)]
        assert post_calls(client, small)["accepted"] == 5
        big = [make_call(at=T0 + timedelta(minutes=1, seconds=i)).to_dict() for i in range(60)]
        raw = json.dumps({"calls": big}).encode()
        assert len(raw) > 20_000
        response = client.post("/v1/calls", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
        assert response.status_code == 413
        # compresses far below the limit, but decompresses above it
        packed = gzip.compress(raw)
        assert len(packed) < 20_000
        headers = {**ADMIN, "Content-Encoding": "gzip", "Content-Type": "application/json"}
        assert client.post("/v1/calls", content=packed, headers=headers).status_code == 413
        assert len(listed(client)) == 5


def test_a_project_key_puts_records_in_its_project(client):
    key = project_key(client.app, "beta")
    theirs = make_call(project="alpha")
    unattributed = make_call(project=None)
    assert post_calls(client, [theirs, unattributed], headers=key) == {"accepted": 2, "duplicates": 0}
    stored = {r["id"]: r for r in listed(client)}
    assert stored[theirs.id]["attribution"]["project"] == "beta"
    assert stored[unattributed.id]["attribution"] == {"project": "beta"}
    assert {r["project"] for r in client.get("/v1/usage?group_by=project", headers=ADMIN).json()["rows"]} == {"beta"}


def test_an_admin_key_keeps_each_records_project(client):
    calls = [make_call(project="alpha"), make_call(project="beta"), make_call(project=None)]
    post_calls(client, calls)
    rows = client.get("/v1/usage?group_by=project", headers=ADMIN).json()["rows"]
    assert [(r["project"], r["calls"]) for r in rows] == [("alpha", 1), ("beta", 1), (None, 1)]


def test_the_key_is_checked_before_anything_else(client):
    response = client.get("/v1/calls", params={"since": "garbage", "limit": "0"})
    assert response.status_code == 401


def test_empty_batch_is_fine(client):
    assert post_calls(client, []) == {"accepted": 0, "duplicates": 0}
