"""`/v1/alert-rules` and `/v1/alerts` over real HTTP on SQLite and PostgreSQL: validation that
names the field, project scoping, what a rule observes now, and the history's filters and
pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, T0, make_call, post_calls, project_key

from tokentrail.core import ValidationError
from tokentrail.server import create_app
from tokentrail.server.alerts import periods
from tokentrail.server.alerts.service import AlertSettings


@pytest.fixture
def api(settings, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TOKENTRAIL_ALERT_INTERVAL", "0")
    previous = periods.set_clock(lambda: T0 + timedelta(minutes=30))  # in the 10:00 UTC hour
    try:
        with TestClient(create_app(settings)) as test_client:
            yield test_client
    finally:
        periods.set_clock(previous)


def rule(**overrides):
    body = {"name": "r", "metric": "spend", "threshold": "5", "window": "1h"}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "spend", "threshold": "1", "window": "1h"}, "name"),
        (rule(metric="cost"), "metric"),
        (rule(metric=None), "metric"),
        (rule(threshold=None), "threshold"),
        (rule(threshold=5.5), "threshold"),  # money: a decimal string
        (rule(threshold="0"), "threshold"),
        (rule(metric="tokens", threshold=10.5), "threshold"),
        (rule(metric="tokens", threshold=0), "threshold"),
        (rule(metric="error_rate", threshold=1.5), "threshold"),
        (rule(metric="error_rate", threshold=0), "threshold"),
        (rule(metric="p95_latency_ms", threshold=-3), "threshold"),
        (rule(window="7m"), "window"),
        (rule(window=None), "window"),
        (rule(min_calls=0), "min_calls"),
        (rule(min_calls=True), "min_calls"),
        (rule(scope={"session_id": "s"}), "scope.session_id"),
        (rule(webhook_url="mailto:x@y"), "webhook_url"),
        (rule(severity="high"), "severity"),
    ],
)
def test_bad_rules_name_the_field(api, body, field):
    response = api.post("/v1/alert-rules", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["field"] == field


def test_rules_crud_and_what_they_observe(api):
    calls = [
        make_call(at=T0 + timedelta(minutes=5), feature="f"),
        make_call(at=T0 + timedelta(minutes=6), feature="f", error=True),
        make_call(at=T0 - timedelta(minutes=1), feature="f"),  # the previous hour
    ]
    post_calls(api, calls)
    created = api.post(
        "/v1/alert-rules",
        json=rule(name="errors", metric="error_rate", threshold=0.9, scope={"feature": "f"}, min_calls=2),
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["threshold"] == 0.9 and body["window"] == "1h" and body["scope"] == {"feature": "f"}
    assert (body["period_start"], body["period_end"]) == ("2025-10-15T10:00:00Z", "2025-10-15T11:00:00Z")
    assert body["calls"] == 2 and body["observed"] == 0.5
    spend = api.post("/v1/alert-rules", json=rule(name="spend", threshold="1.25"), headers=ADMIN).json()
    assert spend["threshold"] == "1.25"
    assert Decimal(spend["observed"]) == sum(c.cost_metrics.total_cost for c in calls[:2])
    tokens = api.post("/v1/alert-rules", json=rule(name="t", metric="tokens", threshold="100"), headers=ADMIN).json()
    assert tokens["threshold"] == 100 and tokens["observed"] == 2 * 1100
    few = api.post(
        "/v1/alert-rules", json=rule(name="slow", metric="p95_latency_ms", threshold=100, min_calls=3), headers=ADMIN
    ).json()
    assert few["observed"] is None  # fewer calls than min_calls: not judged

    listed = api.get("/v1/alert-rules", headers=ADMIN).json()["rules"]
    assert [r["name"] for r in listed] == ["errors", "spend", "t", "slow"]
    assert api.get(f"/v1/alert-rules/{body['id']}", headers=ADMIN).json() == body
    assert api.post("/v1/alert-rules", json=rule(name="errors"), headers=ADMIN).status_code == 409
    assert api.delete(f"/v1/alert-rules/{body['id']}", headers=ADMIN).status_code == 204
    assert api.get(f"/v1/alert-rules/{body['id']}", headers=ADMIN).status_code == 404
    assert api.delete(f"/v1/alert-rules/{body['id']}", headers=ADMIN).status_code == 404


def test_project_keys_see_their_rules_and_alerts_only(api):
    alpha, beta = project_key(api.app, "alpha"), project_key(api.app, "beta")
    mine = api.post("/v1/alert-rules", json=rule(threshold="0.001"), headers=alpha).json()
    assert mine["scope"] == {"project": "alpha"}
    assert api.post("/v1/alert-rules", json=rule(scope={"project": "beta"}), headers=alpha).status_code == 403
    theirs = api.post("/v1/alert-rules", json=rule(threshold="0.001"), headers=beta).json()
    assert [r["id"] for r in api.get("/v1/alert-rules", headers=alpha).json()["rules"]] == [mine["id"]]
    assert api.get(f"/v1/alert-rules/{theirs['id']}", headers=alpha).status_code == 404
    assert api.delete(f"/v1/alert-rules/{theirs['id']}", headers=alpha).status_code == 404

    post_calls(api, [make_call(at=T0 + timedelta(minutes=1), project="alpha")], headers=alpha)
    post_calls(api, [make_call(at=T0 + timedelta(minutes=1), project="beta")], headers=beta)
    api.app.state.alerts.evaluate_now()
    seen_by_alpha = api.get("/v1/alerts", headers=alpha).json()["alerts"]
    assert [(a["rule_id"], a["status"]) for a in seen_by_alpha] == [(mine["id"], "logged")]
    assert {a["rule_id"] for a in api.get("/v1/alerts", headers=ADMIN).json()["alerts"]} == {mine["id"], theirs["id"]}
    assert api.get("/v1/alerts", params={"project": "beta"}, headers=alpha).status_code == 403


def test_alert_history_filters_and_pages(api):
    for i in range(3):
        api.post(
            "/v1/budgets",
            json={"name": f"b{i}", "period": "day", "limit_usd": "0.001", "alert_at": [0.5, 1]},
            headers=ADMIN,
        )
    spend_rule = api.post("/v1/alert-rules", json=rule(threshold="0.001"), headers=ADMIN).json()
    post_calls(api, [make_call(at=T0 + timedelta(minutes=2))])
    api.app.state.alerts.evaluate_now()
    everything = api.get("/v1/alerts", headers=ADMIN).json()
    assert len(everything["alerts"]) == 7 and everything["next_cursor"] is None
    ids = [a["id"] for a in everything["alerts"]]
    assert ids == sorted(ids, reverse=True)  # newest first

    pages, cursor = [], None
    while True:
        params = {"limit": "3"} | ({"cursor": str(cursor)} if cursor else {})
        page = api.get("/v1/alerts", params=params, headers=ADMIN).json()
        pages.append([a["id"] for a in page["alerts"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1] and [i for p in pages for i in p] == ids

    rules_only = api.get("/v1/alerts", params={"kind": "rule"}, headers=ADMIN).json()["alerts"]
    assert [a["rule_id"] for a in rules_only] == [spend_rule["id"]]
    one_budget = api.get("/v1/alerts", params={"budget_id": "2"}, headers=ADMIN).json()["alerts"]
    assert sorted(a["threshold"] for a in one_budget) == [0.5, 1.0] and {a["name"] for a in one_budget} == {"b1"}
    assert api.get("/v1/alerts", params={"status": "delivered"}, headers=ADMIN).json()["alerts"] == []
    assert len(api.get("/v1/alerts", params={"status": "logged"}, headers=ADMIN).json()["alerts"]) == 7
    for params in ({"status": "lost"}, {"kind": "rule", "budget_id": "1"}, {"budget_id": "1", "rule_id": "1"}):
        assert api.get("/v1/alerts", params=params, headers=ADMIN).status_code == 400, params


def test_alert_settings_from_the_environment():
    loaded = AlertSettings.load({"TOKENTRAIL_ALERT_INTERVAL": "5", "TOKENTRAIL_ALERT_MAX_ATTEMPTS": "3"})
    assert (loaded.interval, loaded.max_attempts, loaded.debounce) == (5.0, 3, AlertSettings().debounce)
    for env in (
        {"TOKENTRAIL_ALERT_BACKOFF": "soon"},
        {"TOKENTRAIL_ALERT_MAX_ATTEMPTS": "0"},
        {"TOKENTRAIL_ALERT_INTERVAL": "-1"},
    ):
        with pytest.raises(ValidationError) as caught:
            AlertSettings.load(env)
        assert caught.value.field == next(iter(env))


def test_a_budget_made_again_alerts_again(api):
    """A deleted budget's alerts stay in the history and do not silence a new budget, even
    one that gets the same id (SQLite reuses the highest rowid)."""
    body = {"name": "b", "period": "day", "limit_usd": "0.001", "alert_at": [1]}
    first = api.post("/v1/budgets", json=body, headers=ADMIN).json()
    post_calls(api, [make_call(at=T0 + timedelta(minutes=1))])
    api.app.state.alerts.evaluate_now()
    assert api.delete(f"/v1/budgets/{first['id']}", headers=ADMIN).status_code == 204
    second = api.post("/v1/budgets", json=body, headers=ADMIN).json()
    api.app.state.alerts.evaluate_now()
    alerts = api.get("/v1/alerts", headers=ADMIN).json()["alerts"]
    assert len(alerts) == 2 and {a["budget_id"] for a in alerts} == {first["id"], second["id"]}
    assert len({a["dedupe_key"] for a in alerts}) == 2
