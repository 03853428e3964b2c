"""`/v1/budgets` over real HTTP (TestClient) on SQLite and PostgreSQL: CRUD, validation that
names the field, project-key scoping, and spend computed exactly from the rollups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, T0, make_call, post_calls, project_key

from tokentrail.server import create_app
from tokentrail.server.alerts import periods


@pytest.fixture
def frozen() -> Iterator[None]:
    previous = periods.set_clock(lambda: T0 + timedelta(hours=1))
    yield
    periods.set_clock(previous)


@pytest.fixture
def api(settings, frozen, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TOKENTRAIL_ALERT_INTERVAL", "0")  # no scheduled passes: nothing else runs
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def budget(**overrides):
    body = {"name": "monthly", "period": "month", "limit_usd": "10"}
    body.update(overrides)
    return body


def create(client: TestClient, headers=ADMIN, **overrides) -> dict:
    response = client.post("/v1/budgets", json=budget(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def cost_of(calls) -> Decimal:
    return sum((c.cost_metrics.total_cost for c in calls), Decimal(0))


def test_create_read_update_delete(api):
    created = create(api, scope={"project": "alpha", "user_id": "u1"}, alert_at=[0.8, 0.5, 1], hard=True)
    assert created["name"] == "monthly"
    assert created["scope"] == {"project": "alpha", "user_id": "u1"}
    assert created["limit_usd"] == "10" and created["alert_at"] == [0.5, 0.8, 1.0] and created["hard"] is True
    assert created["spent_usd"] == "0" and created["remaining_usd"] == "10"
    assert created["period_start"] == "2025-10-01T00:00:00Z" and created["period_end"] == "2025-11-01T00:00:00Z"
    budget_id = created["id"]

    assert api.get(f"/v1/budgets/{budget_id}", headers=ADMIN).json() == created
    assert api.get("/v1/budgets", headers=ADMIN).json() == {"budgets": [created], "project": None}

    patched = api.patch(
        f"/v1/budgets/{budget_id}",
        json={"limit_usd": "12.50", "period": "week", "webhook_url": "http://127.0.0.1:9/x"},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["limit_usd"] == "12.5" and body["period"] == "week" and body["webhook_url"] == "http://127.0.0.1:9/x"
    assert body["period_start"] == "2025-10-13T00:00:00Z" and body["period_end"] == "2025-10-20T00:00:00Z"
    assert body["scope"] == created["scope"] and body["hard"] is True  # untouched fields stay
    cleared = api.patch(f"/v1/budgets/{budget_id}", json={"webhook_url": None}, headers=ADMIN).json()
    assert cleared["webhook_url"] is None

    assert api.delete(f"/v1/budgets/{budget_id}", headers=ADMIN).status_code == 204
    assert api.get(f"/v1/budgets/{budget_id}", headers=ADMIN).status_code == 404
    assert api.delete(f"/v1/budgets/{budget_id}", headers=ADMIN).status_code == 404
    assert api.patch(f"/v1/budgets/{budget_id}", json={"hard": False}, headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "month", "limit_usd": "1"}, "name"),
        (budget(name="  "), "name"),
        (budget(period="year"), "period"),
        (budget(period=None), "period"),
        (budget(limit_usd=None), "limit_usd"),
        (budget(limit_usd="ten"), "limit_usd"),
        (budget(limit_usd="-1"), "limit_usd"),
        (budget(limit_usd="0"), "limit_usd"),
        (budget(limit_usd="NaN"), "limit_usd"),
        (budget(limit_usd=10.5), "limit_usd"),  # money is a decimal string, not a float
        (budget(limit_usd="1e30"), "limit_usd"),
        (budget(alert_at=0.5), "alert_at"),
        (budget(alert_at=[0.5, 0]), "alert_at[1]"),
        (budget(alert_at=[0.5, "x"]), "alert_at[1]"),
        (budget(alert_at=[11]), "alert_at[0]"),
        (budget(hard="yes"), "hard"),
        (budget(webhook_url="ftp://example.com/x"), "webhook_url"),
        (budget(webhook_url="not a url"), "webhook_url"),
        (budget(scope={"team": "x"}), "scope.team"),
        (budget(scope={"user_id": ""}), "scope.user_id"),
        (budget(scope=["user_id"]), "scope"),
        (budget(colour="red"), "colour"),
    ],
)
def test_bad_input_names_the_field(api, body, field):
    response = api.post("/v1/budgets", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["field"] == field


def test_bad_patch_and_body(api):
    budget_id = create(api)["id"]
    response = api.patch(f"/v1/budgets/{budget_id}", json={"limit_usd": "0"}, headers=ADMIN)
    assert response.status_code == 400 and response.json()["detail"][0]["field"] == "limit_usd"
    response = api.patch(f"/v1/budgets/{budget_id}", json={"name": None}, headers=ADMIN)
    assert response.status_code == 400 and response.json()["detail"][0]["field"] == "name"
    response = api.post("/v1/budgets", content=b"{not json", headers=ADMIN)
    assert response.status_code == 400 and response.json()["detail"][0]["field"] == "body"
    assert api.get("/v1/budgets/abc", headers=ADMIN).status_code == 400
    assert api.get("/v1/budgets/99999999999999", headers=ADMIN).status_code == 400
    assert api.get("/v1/budgets", headers={}).status_code == 401


def test_names_are_unique_per_project(api):
    create(api, scope={"project": "alpha"})
    create(api, scope={"project": "beta"})  # same name, another project
    response = api.post("/v1/budgets", json=budget(scope={"project": "alpha"}), headers=ADMIN)
    assert response.status_code == 409 and response.json()["detail"][0]["field"] == "name"
    other = create(api, name="other", scope={"project": "alpha"})
    response = api.patch(f"/v1/budgets/{other['id']}", json={"name": "monthly"}, headers=ADMIN)
    assert response.status_code == 409


def test_a_project_key_manages_only_its_project(api):
    alpha = project_key(api.app, "alpha")
    beta = project_key(api.app, "beta")
    mine = create(api, headers=alpha, scope={"user_id": "u1"})
    assert mine["scope"] == {"project": "alpha", "user_id": "u1"}  # the key's project is set
    assert api.post("/v1/budgets", json=budget(name="x", scope={"project": "beta"}), headers=alpha).status_code == 403
    theirs = create(api, headers=beta)
    listing = api.get("/v1/budgets", headers=alpha).json()
    assert [b["id"] for b in listing["budgets"]] == [mine["id"]] and listing["project"] == "alpha"
    assert api.get(f"/v1/budgets/{theirs['id']}", headers=alpha).status_code == 404
    assert api.delete(f"/v1/budgets/{theirs['id']}", headers=alpha).status_code == 404
    assert api.patch(f"/v1/budgets/{theirs['id']}", json={"hard": True}, headers=alpha).status_code == 404
    response = api.patch(f"/v1/budgets/{mine['id']}", json={"scope": {"project": "beta"}}, headers=alpha)
    assert response.status_code == 403
    assert api.get("/v1/budgets", params={"project": "beta"}, headers=alpha).status_code == 403
    everything = api.get("/v1/budgets", headers=ADMIN).json()["budgets"]
    assert {b["id"] for b in everything} == {mine["id"], theirs["id"]}
    only_beta = api.get("/v1/budgets", params={"project": "beta"}, headers=ADMIN).json()["budgets"]
    assert [b["id"] for b in only_beta] == [theirs["id"]]


def test_spend_is_the_exact_sum_of_the_calls_in_scope_and_period(api):
    inside = T0 - timedelta(days=10)  # 2025-10-05: in October
    calls = [
        make_call(at=inside, user_id="u1", feature="chat"),
        make_call(at=inside + timedelta(minutes=7), user_id="u1", model="gpt-4o-mini", input_tokens=12345),
        make_call(at=T0, user_id="u2", feature="chat", output_tokens=777),
        make_call(
            at=T0 + timedelta(minutes=3),
            project="beta",
            user_id="u1",
            provider="anthropic",
            model="claude-3-5-haiku-20241022",
        ),
        make_call(at=T0, user_id="u1", error=True, priced=False),  # unpriced: adds nothing
        make_call(at=T0 - timedelta(days=20), user_id="u1"),  # September: another period
    ]
    post_calls(api, calls)
    october = [c for c in calls if c.started_at.month == 10 and c.cost_metrics is not None]

    def spent(**scope) -> Decimal:
        created = create(api, name="b-" + "-".join(f"{k}={v}" for k, v in sorted(scope.items())), scope=scope)
        return Decimal(created["spent_usd"])

    def attr(call, name):
        if name in ("provider",):
            return call.provider
        if name == "model":
            return call.request_model
        return getattr(call.attribution, name)

    for scope in (
        {},
        {"project": "alpha"},
        {"user_id": "u1"},
        {"project": "alpha", "user_id": "u1"},
        {"feature": "chat"},
        {"model": "gpt-4o-mini"},
        {"provider": "anthropic"},
        {"provider": "claude"},  # normalized like the records' provider
        {"project": "beta", "model": "claude-3-5-haiku-20241022"},
    ):
        normalized = {k: ("anthropic" if v == "claude" else v) for k, v in scope.items()}
        expected = cost_of([c for c in october if all(attr(c, k) == v for k, v in normalized.items())])
        assert spent(**scope) == expected, scope
    listed = api.get("/v1/budgets", headers=ADMIN).json()["budgets"]
    everything = next(b for b in listed if b["scope"] == {})
    assert Decimal(everything["spent_usd"]) == cost_of(october)
    assert Decimal(everything["remaining_usd"]) == Decimal(everything["limit_usd"]) - cost_of(october)


def test_remaining_is_zero_when_overspent(api):
    calls = [make_call(at=T0, input_tokens=2_000_000) for _ in range(3)]
    post_calls(api, calls)
    created = create(api, limit_usd="1")
    assert Decimal(created["spent_usd"]) == cost_of(calls) > 1
    assert created["remaining_usd"] == "0"
