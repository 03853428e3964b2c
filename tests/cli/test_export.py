"""`tokentrail export`: CSV, JSON Lines and Parquet, to a file or stdout, from the local
database or a collector (cursor pagination), streaming page by page."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner
from usage_cli_helpers import (
    ADMIN_KEY,
    T0,
    ThreadServer,
    db_url,  # noqa: F401  (fixture)
    ingest,
    run_cli_without,
    seed_calls,
    total_cost,
    write_with_sdk_sink,
)

import tokentrail.cli.export  # noqa: F401  (registers the command)
from tokentrail.cli._usage_source import LocalSource, Query, RemoteSource
from tokentrail.cli.app import app
from tokentrail.cli.export import FLAT_COLUMNS
from tokentrail.core import LLMCall, ModelOperation, TokenUsage
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.settings import sqlite_url

runner = CliRunner()


@pytest.fixture
def sdk_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
    calls = seed_calls()
    return write_with_sdk_sink(home, calls), calls


def test_jsonl_to_a_file_gives_back_every_record(sdk_file, tmp_path):
    _, calls = sdk_file
    out = tmp_path / "calls.jsonl"
    result = runner.invoke(app, ["export", "--format", "jsonl", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"exported {len(calls):,} calls to {out}" in result.stderr
    records = [LLMCall.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    assert sorted(records, key=lambda c: c.id) == sorted(calls, key=lambda c: c.id)
    started = [r.started_at for r in records]
    assert started == sorted(started, reverse=True)  # newest first


def test_csv_to_stdout_flat_rows_with_exact_costs(sdk_file):
    _, calls = sdk_file
    result = runner.invoke(app, ["export", "-f", "csv", "--since", "2025-10-20", "--user", "alice"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # stdout is the data; no progress bar when not on a terminal
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [name for name, _ in FLAT_COLUMNS]
    chosen = [c for c in calls if c.started_at.date().isoformat() >= "2025-10-20" and c.attribution.user_id == "alice"]
    assert {r["id"] for r in rows} == {c.id for c in chosen}
    assert sum(Decimal(r["total_cost"]) for r in rows if r["total_cost"]) == total_cost(chosen)
    by_id = {c.id: c for c in chosen}
    for row in rows:
        call = by_id[row["id"]]
        expected_input = "" if call.token_usage is None else str(call.token_usage.input_tokens)
        assert row["input_tokens"] == expected_input
        assert row["user_id"] == "alice" and row["provider"] == call.provider
        assert float(row["duration_ms"]) == pytest.approx(call.duration_ms)


def test_csv_marks_errors_units_and_unpriced(sdk_file, tmp_path):
    out = tmp_path / "all.csv"
    assert runner.invoke(app, ["export", "-f", "csv", "-o", str(out), "--quiet"]).exit_code == 0
    rows = list(csv.DictReader(out.open(newline="")))
    failed = [r for r in rows if r["status"] == "error"]
    assert [(r["error_type"], r["attempt"], r["total_cost"]) for r in failed] == [("InternalServerError", "2", "")]
    (ocr,) = [r for r in rows if r["operation"] == "ocr"]
    assert ocr["pages"] == "12" and Decimal(ocr["total_cost"]) > 0
    (unpriced,) = [r for r in rows if r["request_model"] == "acme-private-llm-7b"]
    assert unpriced["pricing_status"] == "unpriced" and unpriced["total_cost"] == ""


def test_pages_are_streamed_in_order_without_repeats(sdk_file):
    db, calls = sdk_file
    with LocalSource(sqlite_url(db)) as source:
        ids = [r["id"] for r in source.calls(Query(), page_size=7)]
    assert len(ids) == len(set(ids)) == len(calls)
    settings = ServerSettings.load(database_url=sqlite_url(db), admin_key=ADMIN_KEY)
    with ThreadServer(create_app(settings)) as server, RemoteSource(server.url, ADMIN_KEY) as remote:
        assert [r["id"] for r in remote.calls(Query(), page_size=7)] == ids


def test_export_from_a_collector_across_pages(tmp_path, monkeypatch):
    """More calls than one API page (1,000): the export follows the cursor to the end."""
    home = tmp_path / "home"
    monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
    usage = TokenUsage.build(input_tokens=10, output_tokens=2)
    calls = [
        LLMCall.new(
            ModelOperation.CHAT,
            started_at=T0 + timedelta(seconds=i),
            provider="openai",
            request_model="gpt-4o-mini",
            token_usage=usage,
        )
        for i in range(1203)
    ]
    db = write_with_sdk_sink(home, calls)
    settings = ServerSettings.load(database_url=sqlite_url(db), admin_key=ADMIN_KEY)
    with ThreadServer(create_app(settings)) as server:
        result = runner.invoke(app, ["export", "-f", "jsonl", "--url", server.url, "--api-key", ADMIN_KEY])
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert len(ids) == len(set(ids)) == 1203


def test_parquet(sdk_file, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _, calls = sdk_file
    out = tmp_path / "calls.parquet"
    result = runner.invoke(app, ["export", "-f", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == len(calls)
    assert table.column_names == [name for name, _ in FLAT_COLUMNS]
    costs = [v for v in table.column("total_cost").to_pylist() if v is not None]
    assert sum(costs, Decimal(0)) == total_cost(calls)
    assert runner.invoke(app, ["export", "-f", "parquet"]).exit_code == 2  # not to stdout


def test_parquet_without_pyarrow_names_the_extra(sdk_file, tmp_path):
    result = run_cli_without("pyarrow", "export", "-f", "parquet", "-o", str(tmp_path / "x.parquet"))
    assert result.returncode == 2
    assert "pip install 'tokentrail[parquet]'" in result.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_unwritable_output_is_an_error(sdk_file, tmp_path):
    result = runner.invoke(app, ["export", "-f", "csv", "-o", str(tmp_path / "no" / "such" / "dir.csv")])
    assert result.exit_code == 1 and "cannot write" in result.stderr


def test_export_with_db_on_sqlite_and_postgresql(db_url):  # noqa: F811
    calls = seed_calls(20)
    ingest(create_app(ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY)), calls)
    result = runner.invoke(app, ["export", "-f", "jsonl", "--db", db_url, "--feature", "search"])
    assert result.exit_code == 0, result.output
    wanted = [c for c in calls if c.attribution and c.attribution.feature == "search"]
    assert sorted(json.loads(line)["id"] for line in result.stdout.splitlines()) == sorted(c.id for c in wanted)
    with LocalSource(db_url) as source:
        paged = [r["id"] for r in source.calls(Query(), page_size=3)]
    assert sorted(paged) == sorted(c.id for c in calls) and len(paged) == len(set(paged))
