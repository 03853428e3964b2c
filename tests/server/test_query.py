"""`GET /v1/calls` filters and cursor pagination, `GET /v1/calls/{id}`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from server_helpers import ADMIN, T0, make_call, post_calls


def ids(client, **params) -> list[str]:
    response = client.get("/v1/calls", params={"limit": "1000", **params}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["calls"]]


@pytest.fixture
def population(client):
    """A varied set of calls, one minute apart, newest last."""
    specs = [
        {"provider": "openai", "model": "gpt-4o", "user_id": "ann", "feature": "chat", "project": "alpha"},
        {"provider": "openai", "model": "gpt-4o-mini", "user_id": "bob", "session_id": "s1", "tenant_id": "t1"},
        {"provider": "anthropic", "model": "claude-3-5-sonnet-latest", "user_id": "ann", "error": True},
        {"provider": "openai", "model": None, "provider_model": "gpt-4o-2024-08-06", "project": "beta"},
        {"provider": "openai", "model": "gpt-4o", "operation": "embeddings", "metadata": {"env": "prod", "n": 2}},
        {"provider": "openai", "model": "gpt-4o", "input_tokens": 200_000, "metadata": {"env": "dev", "flag": True}},
        {"provider": "openai", "model": "gpt-4o", "priced": False, "session_id": "s1", "metadata": {"n": "2"}},
    ]
    calls = [make_call(at=T0 + timedelta(minutes=i), **spec) for i, spec in enumerate(specs)]
    post_calls(client, calls)
    return calls


def test_newest_first_by_default(client, population):
    assert ids(client) == [c.id for c in reversed(population)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "anthropic"}, [2]),
        ({"model": "gpt-4o"}, [0, 4, 5, 6]),
        ({"model": "gpt-4o-2024-08-06"}, [3]),  # no requested model: the response's
        ({"project": "beta"}, [3]),
        ({"user_id": "ann"}, [0, 2]),
        ({"session_id": "s1"}, [1, 6]),
        ({"tenant_id": "t1"}, [1]),
        ({"feature": "chat"}, [0]),
        ({"operation": "embeddings"}, [4]),
        ({"status": "error"}, [2]),
        ({"since": "2025-10-15T10:02:00Z", "until": "2025-10-15T10:04:00Z"}, [2, 3]),
        ({"since": "2025-10-15T12:02:00+02:00"}, [2, 3, 4, 5, 6]),
        ({"until": "2025-10-15T10:01:00"}, [0]),
        ({"metadata.env": "prod"}, [4]),
        ({"metadata.n": "2"}, [4, 6]),  # the number 2 and the string "2"
        ({"metadata.flag": "true"}, [5]),
        ({"metadata.env": "prod", "metadata.n": "2"}, [4]),
        ({"metadata.env": "staging"}, []),
        ({"provider": "openai", "user_id": "bob"}, [1]),
    ],
)
def test_filters(client, population, params, expected):
    assert sorted(ids(client, **params)) == sorted(population[i].id for i in expected)


def test_min_cost_is_a_decimal_usd_threshold(client, population):
    costs = {c.id: c.cost_metrics.total_cost for c in population if c.cost_metrics and c.cost_metrics.total_cost}
    threshold = sorted(costs.values())[len(costs) // 2]
    expected = {i for i, cost in costs.items() if cost >= threshold}
    assert set(ids(client, min_cost=str(threshold))) == expected
    assert ids(client, min_cost="1000") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "last week"}, "since"),
        ({"min_cost": "cheap"}, "min_cost"),
        ({"min_cost": "-1"}, "min_cost"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({'metadata.a"b': "x"}, 'metadata.a"b'),
        ({"user_id": "a\x00b"}, "user_id"),
        ({"metadata.k": "\x00"}, "metadata.k"),
    ],
)
def test_bad_query_parameters_are_400(client, params, field):
    response = client.get("/v1/calls", params=params, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["field"] == field


def test_cursor_pages_cover_everything_once_despite_new_inserts(client):
    # ties on started_at are ordered by id, so equal times cannot repeat or skip a call
    calls = [make_call(at=T0 + timedelta(seconds=i // 3)) for i in range(25)]
    post_calls(client, calls)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/calls", params=params, headers=ADMIN).json()
        seen += [r["id"] for r in body["calls"]]
        pages += 1
        if pages == 2:  # newer calls arriving mid-way land before the cursor: not in later pages
            post_calls(client, [make_call(at=T0 + timedelta(hours=1, seconds=i)) for i in range(3)])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 7
    assert len(seen) == len(set(seen)) == 25
    expected = sorted(calls, key=lambda c: (c.started_at, c.id), reverse=True)
    assert seen == [c.id for c in expected]


def test_forged_cursors_are_400(client):
    for forged in ([10**30, "x"], [1, 2], ["1", "x"], [1, "a\x00"]):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        response = client.get("/v1/calls", params={"cursor": cursor}, headers=ADMIN)
        assert response.status_code == 400 and response.json()["detail"][0]["field"] == "cursor"


def test_page_size_is_capped(client):
    post_calls(client, [make_call(at=T0 + timedelta(seconds=i)) for i in range(3)])
    client.app.state.settings = client.app.state.settings.with_changes(max_page_size=2)
    body = client.get("/v1/calls", params={"limit": "50"}, headers=ADMIN).json()
    assert len(body["calls"]) == 2 and body["next_cursor"] is not None


def test_get_one_call(client, population):
    call = population[2]
    response = client.get(f"/v1/calls/{call.id}", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == call.to_dict()
    assert client.get("/v1/calls/no-such-id", headers=ADMIN).status_code == 404
    assert client.get("/v1/calls/a%00b", headers=ADMIN).status_code == 404
