"""`tokentrail price` and `tokentrail prices search` through the real Typer app (the demo: test_demo_e2e.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from typer.testing import CliRunner

from tokentrail.cli import app
from tokentrail.core import TokenUsage
from tokentrail.pricing import calculate_cost

runner = CliRunner()


def test_price_json_matches_the_engine():
    result = runner.invoke(
        app,
        [
            "price",
            "gpt-4o",
            "--provider",
            "openai",
            "--input",
            "4020",
            "--cache-read",
            "3968",
            "--output",
            "310",
            "--at",
            "2026-06-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    expected = calculate_cost(
        "openai",
        "gpt-4o",
        TokenUsage.build(input_tokens=4020, output_tokens=310, cache_read_tokens=3968),
        at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert Decimal(body["total_cost"]) == expected.total_cost
    assert body["pricing_status"] == "priced"
    assert body["usage"]["total_tokens"] == 4330


def test_price_table_shows_every_bucket_and_the_tier():
    result = runner.invoke(
        app,
        [
            "price",
            "gpt-5",
            "--provider",
            "openai",
            "--input",
            "1493",
            "--cache-read",
            "1280",
            "--output",
            "125",
            "--reasoning",
            "64",
            "--tier",
            "flex",
        ],
    )
    assert result.exit_code == 0, result.output
    for label in ("uncached input", "cache read", "output", "total", "status: priced"):
        assert label in result.output
    flex = calculate_cost(
        "openai",
        "gpt-5",
        TokenUsage.build(input_tokens=1493, output_tokens=125, cache_read_tokens=1280, reasoning_tokens=64),
        service_tier="flex",
    )
    standard = calculate_cost(
        "openai",
        "gpt-5",
        TokenUsage.build(input_tokens=1493, output_tokens=125, cache_read_tokens=1280, reasoning_tokens=64),
    )
    assert flex.total_cost < standard.total_cost
    assert f"{flex.total_cost:,.6f}".rstrip("0") in result.output


def test_unknown_model_is_unpriced_not_zero():
    result = runner.invoke(app, ["price", "no-such-model-xyz", "--provider", "openai", "--input", "10", "--json"])
    body = json.loads(result.output)
    assert body["pricing_status"] == "unpriced"
    assert "total_cost" not in body
    table = runner.invoke(app, ["price", "no-such-model-xyz", "--provider", "openai", "--input", "10"])
    assert table.exit_code == 1
    assert "unpriced" in table.output and "no-such-model-xyz" in table.output


def test_invalid_usage_is_a_clear_error():
    result = runner.invoke(app, ["price", "gpt-4o", "--provider", "openai", "--input", "10", "--cache-read", "20"])
    assert result.exit_code == 2
    assert "cache_read_tokens" in result.output


def test_bad_date_is_refused():
    result = runner.invoke(app, ["price", "gpt-4o", "--provider", "openai", "--input", "10", "--at", "someday"])
    assert result.exit_code != 0
    assert "--at" in result.output


def test_overrides_file_applies(tmp_path):
    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[price]]\nprovider = "openai"\nmodel = "in-house-7b"\ninput_mtok = "0"\noutput_mtok = "0"\n'
        'source = "self-hosted"\n'
    )
    result = runner.invoke(
        app, ["price", "in-house-7b", "--provider", "openai", "--input", "100", "--prices", str(overrides), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["pricing_status"] == "override"
    assert Decimal(body["total_cost"]) == 0


def test_prices_search_lists_matches():
    result = runner.invoke(app, ["prices", "search", "claude-sonnet-4-5", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all("claude-sonnet-4-5" in (r["model"] + (r.get("name") or "")).lower() for r in rows)
    anthropic = next(r for r in rows if r["provider"] == "anthropic")
    assert Decimal(anthropic["input_mtok"]) == 3 and Decimal(anthropic["output_mtok"]) == 15
    table = runner.invoke(app, ["prices", "search", "claude-sonnet-4-5"])
    assert "anthropic" in table.output
    none = runner.invoke(app, ["prices", "search", "zzz-no-such-model"])
    assert none.exit_code == 1
