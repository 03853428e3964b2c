"""Shared by the report/export/whatif CLI tests (imported by module name; tests/ is not a
package): a varied set of recorded calls, ways to store them (the SDK's own SQLite sink, or the
collector's ingest on SQLite or PostgreSQL), and a real uvicorn collector for `--url`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tokentrail.core import Attribution, CallStatus, ErrorInfo, LLMCall, ModelOperation, TokenUsage, Units
from tokentrail.core.settings import Settings
from tokentrail.pricing import calculate_cost
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.settings import sqlite_url
from tokentrail.sinks.sqlite import SQLiteSink

ADMIN_KEY = "admin-cli-test-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
T0 = datetime(2025, 10, 15, 9, 30, tzinfo=UTC)  # a Wednesday
PG_URL = os.environ.get("TOKENTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# (provider, model, input, output, cache_read, cache_write, reasoning)
_SHAPES = (
    ("openai", "gpt-4o", 4020, 310, 3968, None, None),
    ("openai", "gpt-4o-mini", 1800, 120, 1024, None, None),
    ("anthropic", "claude-sonnet-4-5", 2600, 400, 1800, 600, None),
    ("openai", "o4-mini", 900, 1400, None, None, 1024),
    ("anthropic", "claude-haiku-4-5", 300, 90, None, None, None),
)
USERS = ("alice", "bob", "carol")
TENANTS = ("acme", "globex")
FEATURES = ("support-bot", "search", "planner")


def seed_calls(n: int = 60) -> list[LLMCall]:
    """`n` priced chat calls spread over 20 days from T0 (several users, tenants, features and
    projects), plus an unpriced model, a failed call without usage and an OCR job."""
    calls = []
    for i in range(n):
        provider, model, inp, out, cr, cw, rs = _SHAPES[i % len(_SHAPES)]
        usage = TokenUsage.build(
            input_tokens=inp + i, output_tokens=out, cache_read_tokens=cr, cache_write_tokens=cw, reasoning_tokens=rs
        )
        at = T0 + timedelta(hours=7 * i, minutes=i)
        calls.append(
            LLMCall.new(
                ModelOperation.CHAT,
                started_at=at,
                completed_at=at + timedelta(milliseconds=150 + 37 * (i % 11)),
                provider=provider,
                request_model=model,
                token_usage=usage,
                cost_metrics=calculate_cost(provider, model, usage, at=at),
                attribution=Attribution(
                    project="web" if i % 4 else "batch",
                    user_id=USERS[i % 3],
                    tenant_id=TENANTS[i % 2],
                    feature=FEATURES[i % 3],
                ),
            )
        )
    end = T0 + timedelta(days=3)
    unpriced_usage = TokenUsage.build(input_tokens=500, output_tokens=50)
    calls.append(
        LLMCall.new(
            ModelOperation.CHAT,
            started_at=end,
            completed_at=end + timedelta(milliseconds=80),
            provider="openai",
            request_model="acme-private-llm-7b",
            token_usage=unpriced_usage,
            cost_metrics=calculate_cost("openai", "acme-private-llm-7b", unpriced_usage, at=end),
            attribution=Attribution(project="web", user_id="alice", feature="experiments"),
        )
    )
    calls.append(
        LLMCall.new(
            ModelOperation.CHAT,
            started_at=end + timedelta(minutes=1),
            completed_at=end + timedelta(minutes=1, milliseconds=900),
            provider="openai",
            request_model="gpt-4o",
            status=CallStatus.ERROR,
            error=ErrorInfo(type="InternalServerError"),
            attempt=2,
            attribution=Attribution(project="web", user_id="bob", feature="support-bot"),
        )
    )
    pages = Units(pages=12)
    calls.append(
        LLMCall.new(
            ModelOperation.OCR,
            started_at=end + timedelta(minutes=2),
            completed_at=end + timedelta(minutes=2, seconds=2),
            provider="mistral_ai",
            request_model="mistral-ocr-latest",
            units=pages,
            cost_metrics=calculate_cost("mistral_ai", "mistral-ocr-latest", None, at=end, units=pages),
            attribution=Attribution(project="web", user_id="ops", feature="invoice-ocr"),
        )
    )
    return calls


def total_cost(calls: list[LLMCall]) -> Decimal:
    return sum(
        (c.cost_metrics.total_cost for c in calls if c.cost_metrics and c.cost_metrics.total_cost is not None),
        Decimal(0),
    )


def write_with_sdk_sink(home: Path, calls: list[LLMCall]) -> Path:
    """Store the calls as the SDK does by default: its SQLite sink, `<home>/tokentrail.db`."""
    sink = SQLiteSink(Settings.load(home=str(home)))
    try:
        sink.write(calls)
    finally:
        sink.close()
    return home / "tokentrail.db"


def ingest(app: FastAPI, calls: list[LLMCall]) -> None:
    """Store the calls through the collector's `POST /v1/calls` (app started by a TestClient)."""
    with TestClient(app) as client:
        for start in range(0, len(calls), 500):
            body = {"calls": [c.to_dict() for c in calls[start : start + 500]]}
            response = client.post("/v1/calls", json=body, headers=ADMIN)
            assert response.status_code == 200, response.text


def api_usage(settings: ServerSettings, group_by: str | None = None, **params: str) -> list[dict]:
    with TestClient(create_app(settings)) as client:
        if group_by:
            params["group_by"] = group_by
        response = client.get("/v1/usage", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()["rows"]


# ---- databases ------------------------------------------------------------------------------
def _require_pg() -> None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problem = f"PostgreSQL at {PG_URL} is not reachable: {str(exc).strip() or type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each dialect (PostgreSQL: a fresh schema, dropped afterwards)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "collector.db")
        return
    _require_pg()
    schema = f"tt_cli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# ---- a real collector -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """uvicorn serving `app` on 127.0.0.1 in a thread, for `--url`."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run_cli_without(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process where importing `module` fails, as when an extra is missing."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import tokentrail.cli.report, tokentrail.cli.export, tokentrail.cli.whatif, tokentrail.cli.demo\n"
        "from tokentrail.cli.app import app\n"
        "sys.argv[0] = 'tokentrail'\n"
        "app()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def parse_json(output: str) -> dict:
    return json.loads(output)
