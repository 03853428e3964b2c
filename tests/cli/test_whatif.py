"""`tokentrail whatif --model X`: recorded usage repriced on another model (seed 004)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from typer.testing import CliRunner
from usage_cli_helpers import ADMIN_KEY, ThreadServer, parse_json, seed_calls, total_cost, write_with_sdk_sink

import tokentrail.cli.whatif  # noqa: F401  (registers the command)
from tokentrail.cli.app import app
from tokentrail.core import LLMCall
from tokentrail.pricing import calculate_cost
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.settings import sqlite_url

runner = CliRunner()


@pytest.fixture
def sdk_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
    calls = seed_calls()
    return write_with_sdk_sink(home, calls), calls


def whatif(*args: str) -> dict:
    result = runner.invoke(app, ["whatif", "--since", "all", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return parse_json(result.stdout)


def _comparable(call: LLMCall) -> bool:
    return call.token_usage is not None and call.cost_metrics is not None and call.cost_metrics.total_cost is not None


def test_each_call_is_priced_on_the_target_at_its_own_time(sdk_file):
    _, calls = sdk_file
    body = whatif("--model", "claude-haiku-4-5")
    assert body["target"] == {"provider": "anthropic", "model": "claude-haiku-4-5"}  # provider from the catalog
    actual: dict = defaultdict(Decimal)
    on_target: dict = defaultdict(Decimal)
    counted: dict = defaultdict(int)
    for c in calls:
        counted[(c.provider, c.request_model)] += 1
        if _comparable(c):
            actual[(c.provider, c.request_model)] += c.cost_metrics.total_cost
            cost = calculate_cost("anthropic", "claude-haiku-4-5", c.token_usage, at=c.started_at)
            on_target[(c.provider, c.request_model)] += cost.total_cost
    rows = {(r["provider"], r["model"]): r for r in body["rows"]}
    assert set(rows) == set(counted)
    for key, row in rows.items():
        assert row["calls"] == counted[key]
        assert Decimal(row["actual_cost"]) == actual[key]
        assert Decimal(row["whatif_cost"]) == on_target[key]
        assert Decimal(row["delta"]) == on_target[key] - actual[key]
        if actual[key]:
            assert Decimal(row["ratio"]) == (on_target[key] / actual[key]).quantize(Decimal("0.0001"))
    total = body["total"]
    assert Decimal(total["actual_cost"]) == total_cost([c for c in calls if _comparable(c)])
    assert Decimal(total["whatif_cost"]) == sum(on_target.values())
    # the biggest spender first
    costs = [Decimal(r["actual_cost"]) for r in body["rows"]]
    assert costs == sorted(costs, reverse=True)


def test_repricing_on_the_recorded_model_changes_nothing(sdk_file):
    body = whatif("--model", "gpt-4o-mini", "--provider", "openai", "--from-model", "gpt-4o-mini")
    (row,) = body["rows"]
    assert row["compared_calls"] == row["calls"] > 0
    assert row["whatif_cost"] == row["actual_cost"] and row["ratio"] == "1.0000" and Decimal(row["delta"]) == 0


def test_calls_that_cannot_be_compared_are_counted_apart(sdk_file):
    total = whatif("--model", "gpt-4o")["total"]
    assert total["unpriced_actual_calls"] == 1  # the model nobody priced: never $0
    assert total["no_token_usage_calls"] == 2  # the failed call and the per-page OCR job
    assert total["compared_calls"] == total["calls"] - 3


def test_caveats_where_the_price_structure_differs(sdk_file):
    # gpt-3.5-turbo has no cache prices; the seed has cache reads, Anthropic cache writes and reasoning
    body = whatif("--model", "gpt-3.5-turbo")
    rows = {r["model"]: r for r in body["rows"]}
    assert {"no-cache-price", "no-cache-write-price"} <= set(rows["claude-sonnet-4-5"]["caveats"])
    assert rows["o4-mini"]["caveats"] == ["reasoning"]
    assert rows["claude-haiku-4-5"]["caveats"] == []
    assert set(body["caveat_notes"]) == set(body["total"]["caveats"])
    assert "full input rate" in body["caveat_notes"]["no-cache-price"]
    # a model with cache prices: no cache caveat for reads
    rows = {r["model"]: r for r in whatif("--model", "gpt-4o-mini")["rows"]}
    assert "no-cache-price" not in rows["gpt-4o"]["caveats"]


def test_table_and_csv(sdk_file):
    table = runner.invoke(app, ["whatif", "--since", "all", "--model", "gpt-4o-mini"])
    assert table.exit_code == 0, table.output
    assert "openai/gpt-4o-mini" in table.stdout and "│ total" in table.stdout
    assert "not compared" in table.stdout and "estimate" in table.stdout
    result = runner.invoke(app, ["whatif", "--since", "all", "--model", "gpt-4o-mini", "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    as_json = whatif("--model", "gpt-4o-mini")["rows"]
    assert [(r["model"], r["whatif_cost"], r["ratio"]) for r in rows] == [
        (j["model"], j["whatif_cost"], j["ratio"] or "") for j in as_json
    ]
    assert {r["target_model"] for r in rows} == {"gpt-4o-mini"}


def test_against_a_server_with_url(sdk_file):
    db, _ = sdk_file
    local = whatif("--model", "gpt-4o-mini", "--user", "bob")
    settings = ServerSettings.load(database_url=sqlite_url(db), admin_key=ADMIN_KEY)
    with ThreadServer(create_app(settings)) as server:
        remote = whatif("--model", "gpt-4o-mini", "--user", "bob", "--url", server.url, "--api-key", ADMIN_KEY)
    assert remote["rows"] == local["rows"] and remote["total"] == local["total"]
    assert local["total"]["calls"] > 0


def test_an_unknown_target_is_refused(sdk_file):
    result = runner.invoke(app, ["whatif", "--model", "acme-private-llm-7b"])
    assert result.exit_code == 2 and "--provider" in result.stderr
    result = runner.invoke(app, ["whatif", "--model", "acme-private-llm-7b", "--provider", "openai"])
    assert result.exit_code == 2 and "no price" in result.stderr
