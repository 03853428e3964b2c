"""`tokentrail budgets add|list|rm` through the real Typer app: straight in the database
(`--db`, SQLite and PostgreSQL) and through a running collector (`--url --api-key`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from server_helpers import ADMIN, ThreadServer, make_call, post_calls, project_key
from typer.testing import CliRunner

import tokentrail.cli.budgets  # noqa: F401 - registers the command group
from tokentrail.cli.app import app
from tokentrail.server import create_app

runner = CliRunner()


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_add_list_rm_in_the_database(db_url):
    out = invoke(
        "budgets", "add", "--name", "team", "--limit", "100", "--period", "week",
        "--scope", "user_id=u1", "--scope", "feature=chat", "--hard", "--alert-at", "0.5,0.8",
        "--webhook", "http://127.0.0.1:9/hook", "--db", db_url,
    )  # fmt: skip
    assert "created budget 1 'team': $100 per week (hard) for user_id=u1, feature=chat" in out
    invoke("budgets", "add", "--name", "all", "--limit", "2.50", "--db", db_url)
    listed = json.loads(invoke("budgets", "list", "--json", "--db", db_url))
    assert [(b["name"], b["period"], b["limit_usd"], b["hard"]) for b in listed] == [
        ("team", "week", "100", True),
        ("all", "month", "2.5", False),
    ]
    assert listed[0]["alert_at"] == [0.5, 0.8] and listed[0]["scope"] == {"user_id": "u1", "feature": "chat"}
    assert listed[1]["alert_at"] == [1.0]  # the default: alert when the limit is reached

    table = invoke("budgets", "list", "--db", db_url)
    assert "team" in table and "user_id=u1, feature=chat" in table and "$100" in table

    assert "error: name:" in invoke("budgets", "add", "--name", "all", "--limit", "1", "--db", db_url, code=2)
    assert "limit_usd" in invoke("budgets", "add", "--name", "x", "--limit", "-1", "--db", db_url, code=2)
    assert "period" in invoke(
        "budgets", "add", "--name", "x", "--limit", "1", "--period", "year", "--db", db_url, code=2
    )
    assert "scope.team" in invoke(
        "budgets", "add", "--name", "x", "--limit", "1", "--scope", "team=a", "--db", db_url, code=2
    )
    invoke("budgets", "add", "--name", "x", "--limit", "1", "--scope", "oops", "--db", db_url, code=2)

    assert "deleted budget 1" in invoke("budgets", "rm", "team", "--db", db_url)
    assert "deleted budget 2" in invoke("budgets", "rm", "2", "--db", db_url)
    assert json.loads(invoke("budgets", "list", "--json", "--db", db_url)) == []
    assert "no budget named" in invoke("budgets", "rm", "team", "--db", db_url, code=1)
    invoke("budgets", "rm", "7", "--db", db_url, code=1)


def test_through_a_running_collector_with_a_project_key(settings, db_url):
    with TestClient(create_app(settings)) as client, ThreadServer(client.app, lifespan="off") as server:
        key = project_key(client.app, "alpha")["Authorization"].split()[-1]
        at = ["--url", server.url, "--api-key", key]
        out = invoke("budgets", "add", "--name", "mine", "--limit", "5", "--period", "month", *at)
        assert "created budget" in out and "for project=alpha" in out  # the key's project
        assert "HTTP 403" in invoke(
            "budgets", "add", "--name", "theirs", "--limit", "5", "--scope", "project=beta", *at, code=1
        )
        listed = json.loads(invoke("budgets", "list", "--json", *at))
        assert [(b["name"], b["scope"]) for b in listed] == [("mine", {"project": "alpha"})]
        assert "HTTP 409" in invoke("budgets", "add", "--name", "mine", "--limit", "1", *at, code=2)
        assert "HTTP 401" in invoke("budgets", "list", "--url", server.url, "--api-key", "tt_wrong", code=1)
        assert "deleted budget" in invoke("budgets", "rm", "mine", *at)
        assert json.loads(invoke("budgets", "list", "--json", *at)) == []


def test_listing_shows_the_spend_of_the_current_period(settings):
    with TestClient(create_app(settings)) as client:
        client.post("/v1/budgets", json={"name": "now", "period": "month", "limit_usd": "1"}, headers=ADMIN)
        calls = [make_call(at=datetime.now(UTC), input_tokens=n) for n in (1000, 2345)]
        post_calls(client, calls)
    listed = json.loads(invoke("budgets", "list", "--json", "--db", settings.database_url))
    spent = sum(c.cost_metrics.total_cost for c in calls)
    assert Decimal(listed[0]["spent_usd"]) == spent and Decimal(listed[0]["remaining_usd"]) == 1 - spent
