"""`tokentrail report`: on the local database with no server, and against a collector with
`--url`; its numbers are the collector's `/v1/usage` numbers."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner
from usage_cli_helpers import (
    ADMIN_KEY,
    T0,
    ThreadServer,
    api_usage,
    db_url,  # noqa: F401  (fixture)
    ingest,
    parse_json,
    run_cli_without,
    seed_calls,
    total_cost,
    write_with_sdk_sink,
)

import tokentrail.cli.report  # noqa: F401  (registers the command)
from tokentrail.cli.app import app
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.settings import sqlite_url

runner = CliRunner()
ALL = ["--since", "all"]


def report(*args: str) -> dict:
    result = runner.invoke(app, ["report", *ALL, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return parse_json(result.stdout)


@pytest.fixture
def sdk_file(tmp_path, monkeypatch):
    """The seed calls in the SDK's default file, `$TOKENTRAIL_HOME/tokentrail.db`."""
    home = tmp_path / "home"
    monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
    calls = seed_calls()
    return write_with_sdk_sink(home, calls), calls


def test_report_totals_equal_the_api_usage_totals(db_url, tmp_path, monkeypatch):  # noqa: F811
    """The local report and `GET /v1/usage` of a server on the same data agree, on SQLite (the
    file the SDK wrote, adopted and caught up) and on PostgreSQL (data ingested by the API)."""
    calls = seed_calls()
    settings = ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY)
    if db_url.startswith("sqlite"):
        home = tmp_path / "home"
        monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
        write_with_sdk_sink(home, calls)
        settings = ServerSettings.load(database_url=sqlite_url(home / "tokentrail.db"), admin_key=ADMIN_KEY)
        local = report()  # no --db: the SDK's default file
    else:
        ingest(create_app(settings), calls)
        local = report("--db", db_url)
    (api_total,) = api_usage(settings)
    assert local["total"] == api_total
    assert local["total"]["calls"] == len(calls)
    assert Decimal(local["total"]["total_cost"]) == total_cost(calls)
    for by, group_by in (("model", "model"), ("user,day", "user_id,day"), ("feature,month", "feature,month")):
        rows = report("--db", settings.database_url, "--by", by)["rows"]
        expected = api_usage(settings, group_by)
        assert sorted(json.dumps(r, sort_keys=True) for r in rows) == sorted(
            json.dumps(r, sort_keys=True) for r in expected
        )


def test_every_grouping_sums_the_recorded_calls(sdk_file):
    _, calls = sdk_file
    dims = {
        "provider": lambda c: c.provider,
        "model": lambda c: c.request_model,
        "user": lambda c: c.attribution.user_id,
        "tenant": lambda c: c.attribution.tenant_id,
        "feature": lambda c: c.attribution.feature,
        "day": lambda c: c.started_at.date().isoformat(),
        "week": lambda c: (c.started_at.date() - timedelta(days=c.started_at.weekday())).isoformat(),
        "month": lambda c: c.started_at.date().replace(day=1).isoformat(),
    }
    api_key = {"user": "user_id", "tenant": "tenant_id"}
    for by, of in dims.items():
        expected_calls: dict = defaultdict(int)
        expected_cost: dict = defaultdict(Decimal)
        expected_errors: dict = defaultdict(int)
        for c in calls:
            expected_calls[of(c)] += 1
            expected_errors[of(c)] += c.status == "error"
            if c.cost_metrics and c.cost_metrics.total_cost is not None:
                expected_cost[of(c)] += c.cost_metrics.total_cost
        body = report("--by", by)
        got = {row[api_key.get(by, by)]: row for row in body["rows"]}
        assert set(got) == set(expected_calls), by
        for value, row in got.items():
            assert row["calls"] == expected_calls[value], (by, value)
            assert row["errors"] == expected_errors[value], (by, value)
            assert Decimal(row["total_cost"]) == expected_cost[value], (by, value)
        assert body["total"]["calls"] == len(calls)


def test_filters_and_time_range(sdk_file):
    _, calls = sdk_file
    alice = [c for c in calls if c.attribution and c.attribution.user_id == "alice"]
    body = report("--user", "alice", "--by", "feature")
    assert body["total"]["calls"] == len(alice)
    assert Decimal(body["total"]["total_cost"]) == total_cost(alice)
    since, until = T0.date().isoformat(), "2025-10-18"
    window = [c for c in calls if c.started_at.date().isoformat() < until]
    body = runner.invoke(app, ["report", "--since", since, "--until", until, "-f", "json"])
    assert parse_json(body.stdout)["total"]["calls"] == len(window) < len(calls)
    # the default window is the last 7 days: the 2025 seed data is not in it
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0 and "no calls recorded" in result.stdout


def test_table_has_a_row_per_group_and_a_total(sdk_file):
    _, calls = sdk_file
    result = runner.invoke(app, ["report", *ALL, "--by", "provider"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for provider in {c.provider for c in calls}:
        assert any(provider in line for line in lines), provider
    (total_line,) = [line for line in lines if line.startswith("│ total ")]
    assert f"{len(calls):,}" in total_line
    assert "100%" in total_line
    assert "have no known price" in result.stdout  # the unpriced model is said, not shown as $0


def test_csv_has_exact_decimals_and_matches_json(sdk_file):
    _, calls = sdk_file
    result = runner.invoke(app, ["report", *ALL, "--by", "model,tenant", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[:2] == ["model", "tenant_id"]
    as_json = report("--by", "model,tenant")["rows"]
    assert len(rows) == len(as_json)
    assert sum(Decimal(r["total_cost"]) for r in rows) == total_cost(calls)
    assert [(r["model"], r["tenant_id"], r["total_cost"]) for r in rows] == [
        (j["model"], j["tenant_id"] or "", j["total_cost"]) for j in as_json
    ]


def test_against_a_server_with_url(sdk_file):
    db, _ = sdk_file
    local = report("--by", "model,week")
    settings = ServerSettings.load(database_url=sqlite_url(db), admin_key=ADMIN_KEY)
    with ThreadServer(create_app(settings)) as server:
        remote = report("--by", "model,week", "--url", server.url, "--api-key", ADMIN_KEY)
        assert remote["rows"] == local["rows"] and remote["total"] == local["total"]
        bad = runner.invoke(app, ["report", "--url", server.url, "--api-key", "tt_not_a_key_at_all_0123456789"])
        assert bad.exit_code == 1 and "401" in bad.stderr


def test_problems_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENTRAIL_HOME", str(tmp_path / "empty"))
    missing = runner.invoke(app, ["report"])
    assert missing.exit_code == 1 and "no tokentrail database" in missing.stderr
    assert runner.invoke(app, ["report", "--by", "colour"]).exit_code == 2
    assert runner.invoke(app, ["report", "--by", "day,week"]).exit_code == 2
    assert runner.invoke(app, ["report", "--since", "yesterday"]).exit_code == 2
    no_key = runner.invoke(app, ["report", "--url", "http://127.0.0.1:9"], env={"TOKENTRAIL_API_KEY": None})
    assert no_key.exit_code == 2 and "--api-key" in no_key.stderr
    down = runner.invoke(app, ["report", "--url", "http://127.0.0.1:9", "--api-key", "k"])
    assert down.exit_code == 1 and "cannot reach" in down.stderr


def test_without_the_server_extra_the_local_report_names_it(sdk_file):
    result = run_cli_without("sqlalchemy", "report", "--since", "all")
    assert result.returncode == 2
    assert "pip install 'tokentrail[server]'" in result.stderr


def test_a_database_from_a_newer_tokentrail_is_refused_not_damaged(sdk_file):
    db, _ = sdk_file
    assert runner.invoke(app, ["report", *ALL]).exit_code == 0  # migrated (adopted) on first use
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    result = runner.invoke(app, ["report", *ALL])
    assert result.exit_code == 1 and "9999_future" in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999_future",)]
