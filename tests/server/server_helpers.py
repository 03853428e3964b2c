"""Helpers shared by the server tests (imported by module name; tests/ is not a package)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tokentrail.core import Attribution, CallStatus, ErrorInfo, LLMCall, TokenUsage
from tokentrail.pricing import calculate_cost
from tokentrail.server import auth
from tokentrail.server.db.engine import Database

ADMIN_KEY = "admin-test-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
T0 = datetime(2025, 10, 15, 10, 0, tzinfo=UTC)  # a Wednesday


def make_call(
    *,
    at: datetime = T0,
    ms: float | None = 250.0,
    provider: str = "openai",
    model: str | None = "gpt-4o",
    provider_model: str | None = None,
    input_tokens: int = 1000,
    output_tokens: int = 100,
    cache_read: int | None = None,
    reasoning: int | None = None,
    project: str | None = "alpha",
    user_id: str | None = None,
    session_id: str | None = None,
    tenant_id: str | None = None,
    feature: str | None = None,
    error: bool = False,
    metadata: dict[str, Any] | None = None,
    priced: bool = True,
    operation: str = "chat",
) -> LLMCall:
    usage = TokenUsage.build(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        reasoning_tokens=reasoning,
    )
    cost = calculate_cost(provider, model or provider_model or "", usage, at=at) if priced else None
    attribution = Attribution(
        project=project, user_id=user_id, session_id=session_id, tenant_id=tenant_id, feature=feature
    )
    return LLMCall.new(
        operation,
        started_at=at,
        completed_at=at + timedelta(milliseconds=ms) if ms is not None else None,
        provider=provider,
        request_model=model,
        provider_model=provider_model,
        token_usage=usage,
        cost_metrics=cost,
        attribution=attribution if not attribution.is_empty else None,
        status=CallStatus.ERROR if error else CallStatus.OK,
        error=ErrorInfo(type="RateLimitError") if error else None,
        metadata=metadata,
    )


def post_calls(client: TestClient, calls: list[LLMCall], headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.post("/v1/calls", json={"calls": [c.to_dict() for c in calls]}, headers=headers or ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def project_key(app: FastAPI, project: str) -> dict[str, str]:
    db: Database = app.state.db
    with db.write() as conn:
        key, _ = auth.create_key(conn, project=project)
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    """A real uvicorn serving `app` on 127.0.0.1 in a thread (for clients that need a socket)."""

    def __init__(self, app: FastAPI, port: int | None = None, *, lifespan: str = "on") -> None:
        """`lifespan="off"` for an app a TestClient has already started."""
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan)
        self.server = uvicorn.Server(config)
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


# `tokentrail serve` in a child process; the CLI module is imported explicitly so the test
# does not depend on how tokentrail.cli registers its command groups.
_SERVE = (
    "import sys; import tokentrail.cli.serve; from tokentrail.cli.app import app; sys.argv[0] = 'tokentrail'; app()"
)


class ServerProcess:
    """`tokentrail serve` as a real child process on 127.0.0.1."""

    def __init__(self, db_url: str | None, port: int | None = None, *args: str, **env: str) -> None:
        self.db_url = db_url
        self.args = args
        self.port = port or free_port()
        self.env = {**os.environ, "TOKENTRAIL_ADMIN_KEY": ADMIN_KEY, **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        args = [sys.executable, "-c", _SERVE, "serve", "--port", str(self.port), "--log-level", "warning"]
        if self.db_url is not None:
            args += ["--db", self.db_url]
        args += self.args
        self.process = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"tokentrail serve exited with {self.process.returncode}: {output}")
            try:
                if self.get("/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("tokentrail serve did not answer /health")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.request("GET", path, headers=headers)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if body else None
        finally:
            conn.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush, as a crash or an OOM kill."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
