"""The dashboard's "Budgets & alerts" page (issue 6, issue 7) shows exactly what the API
answers: each budget's limit, spend, remaining and period as `GET /v1/budgets`, the rules as
`GET /v1/alert-rules`, the history as `GET /v1/alerts`; a project key's session sees only its
project. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, T0, make_call, post_calls, project_key
from test_dashboard_pages import Balanced, Page, check_money

from tokentrail.server import create_app
from tokentrail.server.alerts import periods
from tokentrail.server.dashboard.format import percent_of

NOW = T0 + timedelta(minutes=30)  # Wednesday 2025-10-15 10:30 UTC


@pytest.fixture
def app_client(settings, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TOKENTRAIL_ALERT_INTERVAL", "0")  # only ingest triggers evaluation
    monkeypatch.setenv("TOKENTRAIL_ALERT_DEBOUNCE", "0")
    previous = periods.set_clock(lambda: NOW)
    try:
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        periods.set_clock(previous)


def created(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def get(client: TestClient, path: str, headers: dict[str, str] = ADMIN) -> Any:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_alerts(client: TestClient, count: int, headers: dict[str, str] = ADMIN) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        alerts = get(client, "/v1/alerts", headers)["alerts"]
        if len(alerts) >= count or time.monotonic() > deadline:
            assert len(alerts) == count, alerts
            return alerts
        time.sleep(0.05)


def log_in(client: TestClient, key: str) -> None:
    response = client.post("/login", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.fixture
def populated(app_client: TestClient) -> dict[str, Any]:
    client = app_client
    beta = project_key(client.app, "beta")
    hard = created(client, "/v1/budgets", {"name": "alpha monthly", "scope": {"project": "alpha"}, "period": "month",
                                            "limit_usd": "0.01", "alert_at": [0.5, 1.0], "hard": True})  # fmt: skip
    soft = created(client, "/v1/budgets", {"name": "chat daily", "scope": {"project": "alpha", "feature": "chat"},
                                           "period": "day", "limit_usd": "1000.25", "alert_at": [0.9]})  # fmt: skip
    theirs = created(client, "/v1/budgets", {"name": "beta weekly", "period": "week", "limit_usd": "3"}, beta)
    rule = created(client, "/v1/alert-rules", {"name": "tokens per hour", "metric": "tokens", "threshold": 1500,
                                               "window": "1h", "scope": {"project": "alpha"}})  # fmt: skip
    beta_rule = created(client, "/v1/alert-rules", {"name": "beta errors", "metric": "error_rate",
                                                    "threshold": 0.5, "window": "day"}, beta)  # fmt: skip
    post_calls(client, [
        make_call(at=T0 + timedelta(minutes=5), feature="chat", user_id="ann"),
        make_call(at=T0 + timedelta(minutes=10), feature="search", input_tokens=2000, output_tokens=300),
        make_call(at=T0 - timedelta(days=20), feature="chat"),  # last month: no budget counts it
        make_call(at=T0 + timedelta(minutes=7), project="beta", input_tokens=10, output_tokens=5, ms=90),
    ])  # fmt: skip
    # the hard budget's 50% and 100% (0.01 USD is spent by one call) and the tokens rule
    wait_for_alerts(client, 3)
    return {"beta": beta, "budgets": [hard, soft, theirs], "rules": [rule, beta_rule]}


def test_admin_page_equals_the_api(app_client, populated):
    client = app_client
    budgets = get(client, "/v1/budgets")["budgets"]
    rules = get(client, "/v1/alert-rules")["rules"]
    alerts = get(client, "/v1/alerts")["alerts"]
    log_in(client, ADMIN_KEY)
    response = client.get("/budgets")
    assert response.status_code == 200
    html = response.text
    assert Balanced(html).errors == []
    assert '<a href="/budgets" aria-current="page">Budgets &amp; alerts</a>' in html
    assert "<script" not in html
    page = Page(html)

    assert page.rows["budgets-table"] == [str(b["id"]) for b in budgets]
    assert len(budgets) == 3
    for budget in budgets:
        key = str(budget["id"])
        cell = page.table("budgets-table")[key]
        assert cell["name"]["value"] == cell["name"]["text"] == budget["name"]
        for money in ("limit_usd", "spent_usd", "remaining_usd"):
            check_money(cell[money], budget[money])
        spent, limit = Decimal(budget["spent_usd"]), Decimal(budget["limit_usd"])
        assert cell["used"]["text"] == percent_of(budget["spent_usd"], budget["limit_usd"])
        shown = str(cell["used"]["text"])
        if shown == "<0.1%":
            assert 0 < 100 * spent / limit < Decimal("0.1")
        else:
            assert Decimal(shown.rstrip("%")) == round(100 * spent / limit, 1)
        assert cell["hard"]["value"] == str(budget["hard"]).lower()
        assert cell["hard"]["text"] == ("hard" if budget["hard"] else "soft")
        assert cell["period"]["value"] == budget["period"]
        assert cell["period_start"]["value"] == budget["period_start"]
        assert cell["period_end"]["value"] == budget["period_end"]
    by_name = {b["name"]: b for b in budgets}
    hard = by_name["alpha monthly"]
    assert Decimal(hard["spent_usd"]) > Decimal(hard["limit_usd"]) and hard["remaining_usd"] == "0"
    assert (hard["period_start"], hard["period_end"]) == ("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z")
    assert Decimal(by_name["chat daily"]["spent_usd"]) > 0  # one chat call today
    assert Decimal(by_name["beta weekly"]["spent_usd"]) > 0
    row = html.split(f'data-id="{hard["id"]}"')[1].split("</tr>")[0]
    assert 'class="budgetbar over"' in row and 'class="fill" width="100.00%"' in row
    soft_row = html.split(f'data-id="{by_name["chat daily"]["id"]}"')[1].split("</tr>")[0]
    assert 'class="budgetbar"' in soft_row

    assert page.rows["rules-table"] == [str(r["id"]) for r in rules]
    for rule in rules:
        cell = page.table("rules-table")[str(rule["id"])]
        assert cell["name"]["value"] == rule["name"]
        assert cell["metric"]["value"] == rule["metric"]
        assert cell["threshold"]["value"] == str(rule["threshold"])
        assert cell["observed"]["value"] == ("" if rule["observed"] is None else str(rule["observed"]))
        assert cell["calls"]["value"] == str(rule["calls"])
        assert cell["window"]["value"] == rule["window"]
    tokens = next(r for r in rules if r["name"] == "tokens per hour")
    assert tokens["observed"] == 1100 + 2300

    assert page.rows["alerts-table"] == [str(a["id"]) for a in alerts]
    for alert in alerts:
        cell = page.table("alerts-table")[str(alert["id"])]
        for name in ("kind", "name", "status", "fired_at", "observed", "threshold"):
            assert cell[name]["value"] == str(alert[name]), name
        assert cell["attempts"]["value"] == str(alert["attempts"])
    assert {(a["name"], a["threshold"]) for a in alerts} == {
        ("alpha monthly", 0.5),
        ("alpha monthly", 1.0),
        ("tokens per hour", 1500),
    }
    assert {a["status"] for a in alerts} == {"logged"}  # no webhook: logged, never sent

    one = Page(client.get("/budgets?project=beta").text)
    assert one.rows["budgets-table"] == [str(populated["budgets"][2]["id"])]
    assert "alerts-table" not in one.rows


def test_project_session_sees_only_its_project(app_client, populated):
    client = app_client
    beta = populated["beta"]
    expected = get(client, "/v1/budgets", beta)["budgets"]
    assert [b["name"] for b in expected] == ["beta weekly"]
    log_in(client, beta["Authorization"].removeprefix("Bearer "))
    html = client.get("/budgets").text
    page = Page(html)
    assert page.rows["budgets-table"] == [str(expected[0]["id"])]
    cell = page.table("budgets-table")[str(expected[0]["id"])]
    check_money(cell["spent_usd"], expected[0]["spent_usd"])
    check_money(cell["remaining_usd"], expected[0]["remaining_usd"])
    assert page.rows["rules-table"] == [str(populated["rules"][1]["id"])]
    assert "alerts-table" not in page.rows and get(client, "/v1/alerts", beta)["alerts"] == []
    for other in ("alpha monthly", "chat daily", "tokens per hour"):
        assert other not in html
    assert 'id="project-select"' not in html
    assert client.get("/budgets?project=alpha").status_code == 403


def test_needs_a_session(app_client):
    response = app_client.get("/budgets", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fbudgets"
    log_in(app_client, ADMIN_KEY)
    html = app_client.get("/budgets").text
    assert "No budgets." in html and "No alert rules." in html and "No alerts have fired." in html
