"""`tokentrail keys`, `tokentrail db` and `tokentrail serve` through the real Typer app."""

from __future__ import annotations

import json
from datetime import timedelta

from server_helpers import ADMIN, T0, ServerProcess, make_call
from typer.testing import CliRunner

import tokentrail
import tokentrail.cli.db
import tokentrail.cli.keys
import tokentrail.cli.serve
from tokentrail.cli.app import app
from tokentrail.server.auth import authenticate
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_list_revoke(db_url):
    output = invoke("keys", "create", "--project", "alpha", "--name", "ci", "--db", db_url)
    key = output.split()[-1]
    assert key.startswith("tt_")
    second = invoke("keys", "create", "--project", "alpha", "--db", db_url).split()[-1]
    invoke("keys", "create", "--project", "beta", "--db", db_url)
    admin = invoke("keys", "create", "--admin", "--db", db_url).split()[-1]
    listing = invoke("keys", "list", "--db", db_url)
    assert key[:11] in listing and key not in listing and "project beta" in listing and "admin" in listing
    assert "project beta" not in invoke("keys", "list", "--project", "alpha", "--db", db_url)

    assert "revoked 1 key(s)" in invoke("keys", "revoke", key, "--db", db_url)
    assert "revoked 1 key(s)" in invoke("keys", "revoke", "--project", "alpha", "--db", db_url)  # the second one
    assert runner.invoke(app, ["keys", "revoke", "--project", "alpha", "--db", db_url]).exit_code == 1  # none left
    db = Database(db_url)
    try:
        with db.read() as conn:
            assert authenticate(conn, key) is None and authenticate(conn, second) is None
            assert authenticate(conn, admin).admin
    finally:
        db.dispose()


def test_keys_need_a_project_or_admin(db_url):
    result = runner.invoke(app, ["keys", "create", "--db", db_url])
    assert result.exit_code == 2 and "project" in result.output


def test_db_upgrade_downgrade_current(db_url):
    assert "base" in invoke("db", "current", "--db", db_url)
    assert f"-> {migrate.head()}" in invoke("db", "upgrade", "--db", db_url)
    assert "-> 0001" in invoke("db", "downgrade", "0001", "--db", db_url)
    assert "-> base" in invoke("db", "downgrade", "base", "--db", db_url)
    invoke("db", "upgrade", "--db", db_url)
    assert f"{migrate.head()} (head {migrate.head()})" in invoke("db", "current", "--db", db_url)


def test_bad_database_urls_are_refused():
    result = runner.invoke(app, ["db", "current", "--db", "mysql://x/y"])
    assert result.exit_code == 2 and "not a supported database" in result.output


def test_serve_defaults_to_the_file_the_sdk_writes(tmp_path):
    # the SDK's default sink writes $TOKENTRAIL_HOME/tokentrail.db (conftest points it at tmp)
    tokentrail.configure()
    try:
        for i in range(3):
            tokentrail.log_llm_usage(provider="openai", model="gpt-4o-mini", input_tokens=100 + i, output_tokens=10)
        assert tokentrail.flush(10)
    finally:
        tokentrail.shutdown()
    server = ServerProcess(None).start()
    try:
        status, body = server.get("/v1/usage?group_by=model", ADMIN)
        assert status == 200
        assert [(r["model"], r["calls"], r["input_tokens"]) for r in body["rows"]] == [("gpt-4o-mini", 3, 303)]
        status, listed = server.get("/v1/calls", ADMIN)
        assert len(listed["calls"]) == 3
        assert server.get("/v1/calls")[0] == 401
    finally:
        server.stop()


def test_serve_with_several_workers(db_url):
    server = ServerProcess(db_url, None, "--workers", "2").start()
    try:
        records = [make_call(at=T0 + timedelta(seconds=i)) for i in range(40)]
        for start in range(0, 40, 10):  # several requests, so both workers may take some
            body = json.dumps({"calls": [r.to_dict() for r in records[start : start + 10]]}).encode()
            status, answer = server.request("POST", "/v1/calls", body, {**ADMIN, "Content-Type": "application/json"})
            assert (status, answer) == (200, {"accepted": 10, "duplicates": 0})
        status, body = server.get("/v1/usage", ADMIN)
        assert status == 200 and body["rows"][0]["calls"] == 40
    finally:
        server.stop()
