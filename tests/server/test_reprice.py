"""Repricing on SQLite and PostgreSQL, through `tokentrail reprice` and `POST /v1/reprice`:
an override file changes prices, the dry run reports the difference and writes nothing, the
real run updates the calls, their records and the rollups (so `/v1/usage` agrees with a scan
of the calls), unpriced calls become priced, and a provider-reported cost keeps winning."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, T0, make_call, post_calls, project_key
from typer.testing import CliRunner

import tokentrail.cli.reprice  # noqa: F401  (registers the command)
from tokentrail.cli.app import app
from tokentrail.core.settings import Settings
from tokentrail.pricing import PRICES_ENV, apply_provider_reported
from tokentrail.server import ServerSettings, create_app
from tokentrail.sinks.sqlite import SQLiteSink

runner = CliRunner()
MTOK = Decimal(1_000_000)
# The override prices (USD per million tokens), written to the file below.
GPT4O = (Decimal("1.00"), Decimal("2.00"))
PRIVATE = (Decimal("0.50"), Decimal("1.50"))
OVERRIDES = """
version = 1

[[price]]
provider = "openai"
model = ["gpt-4o"]
input_mtok = "1.00"
output_mtok = "2.00"
source = "test: negotiated rate"

[[price]]
provider = "openai"
model = ["my-private-model"]
input_mtok = "0.50"
output_mtok = "1.50"
source = "test: self-hosted"
"""


def expected(prices, call) -> Decimal:
    usage = call.token_usage
    return (usage.input_tokens * prices[0] + usage.output_tokens * prices[1]) / MTOK


@pytest.fixture
def prices_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDES)
    return path


def stored_calls():
    gpt = [
        make_call(input_tokens=1000 * (i + 1), output_tokens=100 * (i + 1), at=T0 + timedelta(hours=i))
        for i in range(3)
    ]
    private = make_call(model="my-private-model", input_tokens=4000, output_tokens=1000, priced=False)
    mini = make_call(model="gpt-4o-mini", input_tokens=500, output_tokens=50)  # not overridden: unchanged
    reported = make_call(input_tokens=2000, output_tokens=10, at=T0 + timedelta(days=2))
    reported = replace(reported, cost_metrics=apply_provider_reported(reported.cost_metrics, Decimal("0.5")))
    tool = make_call(model=None, operation="execute_tool", input_tokens=0, output_tokens=0, priced=False)
    return gpt, private, mini, reported, tool


def usage_total(client, **params) -> dict:
    rows = client.get("/v1/usage", params=params, headers=ADMIN).json()["rows"]
    assert len(rows) == 1
    return rows[0]


def by_model(client, group_by):
    rows = client.get("/v1/usage", params={"group_by": group_by}, headers=ADMIN).json()["rows"]
    out: dict = {}
    for row in rows:
        acc = out.setdefault(row["model"], [Decimal(0), 0])
        acc[0] += Decimal(row["total_cost"])
        acc[1] += row["unpriced_calls"]
    return out


def reprice_cli(db_url, *args):
    result = runner.invoke(app, ["reprice", "--db", db_url, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_dry_run_then_real_run_through_the_cli(client, db_url, prices_file):
    gpt, private, mini, reported, tool = stored_calls()
    everything = [*gpt, private, mini, reported, tool]
    post_calls(client, everything)
    before = usage_total(client)
    old_total = sum(c.cost_metrics.total_cost for c in everything if c.cost_metrics and c.cost_metrics.total_cost)
    assert Decimal(before["total_cost"]) == old_total and before["unpriced_calls"] == 2  # private + tool

    new_gpt = sum(expected(GPT4O, c) for c in gpt)
    new_private = expected(PRIVATE, private)
    dry = reprice_cli(db_url, "--prices", str(prices_file), "--dry-run")
    assert dry["dry_run"] is True and dry["examined"] == len(everything)
    assert dry["changed"] == 5  # three gpt-4o, the private model, the reported call's computed cost
    assert Decimal(dry["old_total"]) == old_total
    new_total = old_total - sum(c.cost_metrics.total_cost for c in gpt) + new_gpt + new_private
    assert Decimal(dry["new_total"]) == new_total
    assert Decimal(dry["delta"]) == new_total - old_total
    assert dry["newly_priced"] == 1
    models = {(m["provider"], m["model"]): m for m in dry["models"]}
    assert Decimal(models[("openai", "gpt-4o")]["delta"]) == new_gpt - sum(c.cost_metrics.total_cost for c in gpt)
    assert models[("openai", "gpt-4o")]["changed"] == 4 and models[("openai", "gpt-4o")]["calls"] == 4
    assert Decimal(models[("openai", "my-private-model")]["new_total"]) == new_private
    assert ("openai", "gpt-4o-mini") not in models
    # the dry run wrote nothing
    assert usage_total(client) == before
    assert client.get(f"/v1/calls/{gpt[0].id}", headers=ADMIN).json() == gpt[0].to_dict()

    real = reprice_cli(db_url, "--prices", str(prices_file))
    assert {k: v for k, v in real.items() if k != "dry_run"} == {k: v for k, v in dry.items() if k != "dry_run"}
    after = usage_total(client)
    assert Decimal(after["total_cost"]) == new_total and after["unpriced_calls"] == 1  # the tool call
    assert after["calls"] == before["calls"] and after["input_tokens"] == before["input_tokens"]
    # the records carry the new cost
    record = client.get(f"/v1/calls/{gpt[1].id}", headers=ADMIN).json()
    assert Decimal(record["cost_metrics"]["total_cost"]) == expected(GPT4O, gpt[1])
    assert record["cost_metrics"]["pricing_status"] == "override"
    record = client.get(f"/v1/calls/{private.id}", headers=ADMIN).json()
    assert Decimal(record["cost_metrics"]["total_cost"]) == new_private
    # the provider's figure keeps winning; the computed one beside it follows the new prices
    record = client.get(f"/v1/calls/{reported.id}", headers=ADMIN).json()["cost_metrics"]
    assert record["total_cost"] == "0.5" and record["pricing_status"] == "provider_reported"
    assert Decimal(record["computed_cost"]) == expected(GPT4O, reported)
    # rollups (group by model) agree with a scan of the calls (session_id is in no rollup)
    assert by_model(client, "model") == by_model(client, "model,session_id")
    assert by_model(client, "model")["gpt-4o"][0] == new_gpt + Decimal("0.5")
    # hour and day cubes moved together
    assert by_model(client, "model,hour") == by_model(client, "model,day") == by_model(client, "model")
    # once applied, nothing is left to change
    again = reprice_cli(db_url, "--prices", str(prices_file))
    assert again["changed"] == 0 and Decimal(again["delta"]) == 0


def test_api_reprice_with_a_range_and_admin_only(client, prices_file, monkeypatch):
    gpt, private, mini, reported, tool = stored_calls()
    post_calls(client, [*gpt, private, mini, reported, tool])
    alpha = project_key(client.app, "alpha")
    assert client.post("/v1/reprice", json={"dry_run": True}, headers=alpha).status_code == 403
    assert client.post("/v1/reprice", json={"dry_run": "maybe"}, headers=ADMIN).status_code == 400
    bad = client.post("/v1/reprice", json={"since": "yesterday"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["detail"][0]["field"] == "since"

    # without overrides the catalog prices them as at ingest: nothing changes
    monkeypatch.delenv(PRICES_ENV, raising=False)
    unchanged = client.post("/v1/reprice", json={}, headers=ADMIN).json()
    assert unchanged["changed"] == 0 and unchanged["examined"] == 7

    monkeypatch.setenv(PRICES_ENV, str(prices_file))  # read again at each request
    window = {
        "since": T0.isoformat(),
        "until": (T0 + timedelta(hours=2)).isoformat(),
    }  # gpt[0], gpt[1], private, mini, tool
    dry = client.post("/v1/reprice", json={**window, "dry_run": True}, headers=ADMIN).json()
    assert dry["examined"] == 5 and dry["changed"] == 3
    before = usage_total(client)
    real = client.post("/v1/reprice", json=window, headers=ADMIN).json()
    assert real["changed"] == 3 and real["dry_run"] is False
    after = usage_total(client)
    assert Decimal(after["total_cost"]) - Decimal(before["total_cost"]) == Decimal(real["delta"])
    # gpt[2] (outside the window) keeps its catalog price
    record = client.get(f"/v1/calls/{gpt[2].id}", headers=ADMIN).json()
    assert record == gpt[2].to_dict()
    assert by_model(client, "model") == by_model(client, "model,session_id")


def test_project_option_limits_the_run(client, db_url, prices_file):
    alpha = make_call(project="alpha")
    beta = make_call(project="beta")
    post_calls(client, [alpha, beta])
    report = reprice_cli(db_url, "--prices", str(prices_file), "--project", "beta")
    assert report["examined"] == 1 and report["changed"] == 1
    assert client.get(f"/v1/calls/{alpha.id}", headers=ADMIN).json() == alpha.to_dict()
    beta_cost = client.get(f"/v1/calls/{beta.id}", headers=ADMIN).json()["cost_metrics"]["total_cost"]
    assert Decimal(beta_cost) == expected(GPT4O, beta)


def test_cli_table_output_and_errors(client, db_url, prices_file, tmp_path):
    post_calls(client, list(stored_calls()[0]))
    result = runner.invoke(
        app, ["reprice", "--db", db_url, "--prices", str(prices_file), "--dry-run", "--since", "30d"]
    )
    assert result.exit_code == 0, result.output
    assert "0 examined" in result.output  # T0 is long before the last 30 days
    result = runner.invoke(
        app, ["reprice", "--db", db_url, "--prices", str(prices_file), "--dry-run", "--since", "2025-01-01"]
    )
    assert result.exit_code == 0, result.output
    assert "3 examined, 3 would change" in result.output and "gpt-4o" in result.output and "dry run" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[[price]]\nprovider = "openai"\n')
    assert runner.invoke(app, ["reprice", "--db", db_url, "--prices", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["reprice", "--db", db_url, "--since", "soon"]).exit_code == 2
    empty = tmp_path / "empty.db"
    result = runner.invoke(app, ["reprice", "--db", str(empty)])
    assert result.exit_code == 1 and "db upgrade" in result.output


def test_calls_the_sdk_wrote_into_the_file_are_repriced_once(tmp_path, prices_file):
    """Rows the SDK's SQLite sink wrote while the server ran are not in the rollups yet: the
    reprice changes their cost only, and the catch-up then folds in the new figure."""
    path = tmp_path / "tokentrail.db"
    settings = ServerSettings.load(database_url=str(path), admin_key=ADMIN_KEY)
    served = [make_call(at=T0 + timedelta(minutes=i)) for i in range(2)]
    written = [make_call(at=T0 + timedelta(hours=1, minutes=i), input_tokens=5000) for i in range(3)]
    with TestClient(create_app(settings)) as client:
        post_calls(client, served)
        sink = SQLiteSink(Settings.load(sqlite_path=str(path)))
        sink.write(written)
        sink.close()
        report = reprice_cli(str(path), "--prices", str(prices_file))
        assert report["changed"] == 5
        total = usage_total(client)  # runs the catch-up first
        assert Decimal(total["total_cost"]) == sum(expected(GPT4O, c) for c in [*served, *written])
        assert total["calls"] == 5
        assert by_model(client, "model") == by_model(client, "model,session_id")
