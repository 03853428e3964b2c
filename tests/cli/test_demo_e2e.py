"""`tokentrail demo` end to end, as `make demo` runs it: a child process drives the real openai
and anthropic SDKs against the mock provider; the instrumentation records every call into the
collector it serves; the stored records, the printed report, the API and the dashboard link
are checked while it serves; then it stops on Ctrl-C (SIGINT).

One demo run serves every test here (module fixture), to keep the suite fast."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from usage_cli_helpers import free_port, run_cli_without

KEY = "demo-e2e-test-admin-key-0123456789"
_DEMO = "import sys, tokentrail.cli.demo; from tokentrail.cli.app import app; sys.argv[0] = 'tokentrail'; app()"
_COLUMNS = (
    "provider, request_model, operation, status, user_id, tenant_id, feature, streaming, cache_read_tokens, "
    "cache_write_tokens, reasoning_tokens, total_cost, pricing_status, attempt, record"
)


@dataclass
class Demo:
    process: subprocess.Popen[str]
    port: int
    db: Path
    output: str

    def get(self, path: str, key: str | None = KEY) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def calls(self) -> list[dict]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM calls")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("demo") / "home"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _DEMO, "demo", "--port", str(port), "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TOKENTRAIL_ADMIN_KEY": KEY, "TOKENTRAIL_HOME": str(home)},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline() if process.stdout else ""
            if not line:
                break
            lines.append(line)
            if line.startswith("Serving"):
                break
        output = "".join(lines)
        assert lines and lines[-1].startswith("Serving"), output
        yield Demo(process, port, home / "tokentrail.db", output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout:
            process.stdout.close()


def test_the_workload_is_recorded_with_every_kind_of_call(demo: Demo):
    calls = demo.calls()
    assert {c["provider"] for c in calls} == {"openai", "anthropic", "mistral_ai"}
    assert len({c["user_id"] for c in calls} - {None}) >= 5
    assert {c["tenant_id"] for c in calls} - {None} == {"acme", "globex"}
    assert len({c["feature"] for c in calls} - {None}) >= 6
    # a stream through each SDK, priced from its usage
    streams = [c for c in calls if c["streaming"]]
    assert {c["provider"] for c in streams} == {"openai", "anthropic"}
    assert all(c["total_cost"] is not None for c in streams)
    # the repeated support prompt hits both prompt caches; Anthropic wrote it first
    support = [c for c in calls if c["feature"] == "support-bot"]
    assert {c["provider"] for c in support if (c["cache_read_tokens"] or 0) > 1000} == {"openai", "anthropic"}
    assert any((c["cache_write_tokens"] or 0) > 1000 for c in support if c["provider"] == "anthropic")
    assert any((c["reasoning_tokens"] or 0) > 0 for c in calls)
    # one call failed after its retry (no cost); another succeeded on its second attempt after a 429
    (failed,) = [c for c in calls if c["status"] == "error"]
    assert failed["attempt"] == 2 and failed["total_cost"] is None
    assert json.loads(failed["record"])["error"]["type"]
    assert any(c["attempt"] == 2 and c["status"] == "ok" for c in calls)
    embeddings = [c for c in calls if c["operation"] == "embeddings"]
    assert len(embeddings) == 2 and all(c["total_cost"] is not None for c in embeddings)
    (ocr,) = [c for c in calls if c["operation"] == "ocr"]
    assert json.loads(ocr["record"])["units"]["pages"] > 0 and ocr["total_cost"] > 0
    unpriced = [c for c in calls if c["request_model"] == "acme-private-llm-7b"]
    assert [(c["total_cost"], c["pricing_status"]) for c in unpriced] == [(None, "unpriced")]


def test_the_printed_report_is_the_stored_data_and_the_api(demo: Demo):
    calls = demo.calls()
    status, body = demo.get("/v1/usage")
    assert status == 200
    (usage,) = json.loads(body)["rows"]
    assert usage["calls"] == len(calls)
    stored = sum((Decimal(c["total_cost"]) for c in calls if c["total_cost"] is not None), Decimal(0))
    assert Decimal(usage["total_cost"]) == stored / 10**12
    assert f"{len(calls)} calls recorded" in demo.output
    assert "│ total" in demo.output and f"${Decimal(usage['total_cost']):,.6f}".rstrip("0") in demo.output
    assert KEY not in demo.output  # a key from the environment is not printed


def test_the_evaluation_is_attached_when_the_collector_has_the_api(demo: Demo):
    with sqlite3.connect(demo.db) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "call_evaluations" not in tables:
            assert "evaluation skipped" in demo.output
            return
        ((call_id, judge_model),) = conn.execute("SELECT call_id, judge_model FROM call_evaluations").fetchall()
    support_ids = {json.loads(c["record"])["id"] for c in demo.calls() if c["feature"] == "support-bot"}
    assert call_id in support_ids and judge_model.startswith("gpt-4o-mini")


def test_the_dashboard_link_answers(demo: Demo):
    (link,) = [line.split("Dashboard: ", 1)[1].strip() for line in demo.output.splitlines() if "Dashboard: " in line]
    target = urllib.parse.urlsplit(link)
    assert (target.hostname, target.port) == ("127.0.0.1", demo.port)
    if target.query:  # a one-time login URL: redeemed once
        status, _ = demo.get(f"{target.path}?{target.query}", key=None)
        assert status < 400
    else:
        assert demo.get("/health", key=None)[0] == 200


def test_ctrl_c_stops_it(demo: Demo):
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(15) == 0


def test_without_an_sdk_the_demo_names_the_extra(tmp_path):
    result = run_cli_without("anthropic", "demo", "--no-serve", "--port", "0", "--home", str(tmp_path))
    assert result.returncode == 2
    assert "pip install 'tokentrail[anthropic]'" in result.stderr
    assert not (tmp_path / "tokentrail.db").exists()  # nothing started
