"""Dashboard login (issue 6): the one-time login URL, API-key login, the session cookie,
logout, revocation and what a project key's session may see; on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from server_helpers import _SERVE, ADMIN_KEY, free_port, make_call, post_calls, project_key

from tokentrail.server import auth
from tokentrail.server.dashboard import issue_login_token, login_url
from tokentrail.server.dashboard.sessions import COOKIE_NAME
from tokentrail.server.db.dashboard_models import dashboard_sessions

PAGES = ["/", "/calls", "/calls/some-id", "/by/user", "/by/tenant", "/by/feature"]


def login(client: TestClient, key: str = ADMIN_KEY, next_path: str | None = None):
    data = {"api_key": key} | ({"next": next_path} if next_path is not None else {})
    return client.post("/login", data=data, follow_redirects=False)


def cookie_header(response) -> str:
    header = response.headers.get("set-cookie", "")
    assert header.startswith(f"{COOKIE_NAME}="), header
    return header


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_visitors_without_a_session_to_the_login_page(client, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login")
    if path != "/":
        assert "next=" in location
    page = client.get(location)
    assert page.status_code == 200 and 'name="api_key"' in page.text and 'type="password"' in page.text


def test_login_url_opens_an_admin_session_once(client):
    token = issue_login_token(client.app.state.db)
    first = client.get(f"/?token={token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
    header = cookie_header(first).lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header and "secure" not in header
    overview = client.get("/")
    assert overview.status_code == 200 and 'data-scope="admin"' in overview.text
    client.cookies.clear()
    again = client.get(f"/?token={token}", follow_redirects=False)
    assert again.status_code == 401 and "already used or has expired" in again.text
    assert "set-cookie" not in again.headers
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_token_expires_and_unknown_tokens_are_refused(client):
    db = client.app.state.db
    token = issue_login_token(db)
    with db.write() as conn:
        conn.execute(dashboard_sessions.update().values(expires_at=1))  # long ago
    assert client.get(f"/?token={token}", follow_redirects=False).status_code == 401
    assert client.get("/?token=", follow_redirects=False).status_code == 401
    assert client.get("/?token=nonsense", follow_redirects=False).status_code == 401


def test_sessions_are_stored_hashed_and_expire(client):
    response = login(client)
    value = response.cookies[COOKIE_NAME]
    db = client.app.state.db
    with db.read() as conn:
        stored = conn.execute(sa.select(dashboard_sessions.c.token_hash, dashboard_sessions.c.kind)).all()
    assert [row.kind for row in stored] == ["session"]
    assert value not in {row.token_hash for row in stored}  # only a hash is kept
    assert client.get("/").status_code == 200
    with db.write() as conn:
        conn.execute(dashboard_sessions.update().values(expires_at=1))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_api_key_login_logout(client):
    response = login(client, next_path="/calls?status=error")
    assert response.status_code == 303 and response.headers["location"] == "/calls?status=error"
    assert "httponly" in cookie_header(response).lower()
    value = response.cookies[COOKIE_NAME]
    assert client.get("/calls?status=error").status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"  # already logged in
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert f"{COOKIE_NAME}=" in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()
    assert client.get("/", follow_redirects=False).status_code == 303
    # the session is gone on the server, not only forgotten by this browser
    client.cookies.set(COOKIE_NAME, value)
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("key", ["", "   ", "tt_notakey", ADMIN_KEY + "x"])
def test_a_wrong_key_is_refused(client, key):
    response = login(client, key)
    assert response.status_code in (400, 401)
    assert "set-cookie" not in response.headers
    assert 'role="alert"' in response.text
    if key.strip():
        assert key.strip() not in response.text  # never echoed back


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "calls"])
def test_login_never_redirects_away(client, target):
    response = login(client, next_path=target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_posts_from_another_origin_are_refused(client):
    for origin in ("http://evil.example", "null"):
        response = client.post(
            "/login", data={"api_key": ADMIN_KEY}, headers={"Origin": origin}, follow_redirects=False
        )
        assert response.status_code == 403 and "set-cookie" not in response.headers
    same = client.post(
        "/login", data={"api_key": ADMIN_KEY}, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert same.status_code == 303
    assert client.post("/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_an_oversized_form_is_refused(client):
    response = client.post("/login", content=b"api_key=" + b"x" * 20_000, follow_redirects=False)
    assert response.status_code == 413


def test_revoking_the_key_ends_its_sessions(client):
    headers = project_key(client.app, "alpha")
    key = headers["Authorization"].removeprefix("Bearer ")
    assert login(client, key).status_code == 303
    assert client.get("/").status_code == 200
    with client.app.state.db.write() as conn:
        assert auth.revoke_keys(conn, key=key) == 1
    assert client.get("/", follow_redirects=False).status_code == 303


def test_project_session_sees_only_its_project(client):
    recent = datetime.now(UTC) - timedelta(hours=1)
    alpha = [make_call(at=recent, project="alpha", user_id="ann"), make_call(at=recent, project="alpha", user_id="bob")]
    beta = [make_call(at=recent, project="beta", user_id="zed", input_tokens=5000)]
    post_calls(client, alpha + beta)
    key = project_key(client.app, "alpha")["Authorization"].removeprefix("Bearer ")
    assert login(client, key).status_code == 303
    calls_page = client.get("/calls")
    assert calls_page.status_code == 200 and 'data-scope="alpha"' in calls_page.text
    for call in alpha:
        assert call.id in calls_page.text
    assert beta[0].id not in calls_page.text and "zed" not in calls_page.text
    assert client.get(f"/calls/{alpha[0].id}").status_code == 200
    assert client.get(f"/calls/{beta[0].id}").status_code == 404  # as if it did not exist
    assert client.get("/?project=beta").status_code == 403
    assert client.get("/calls?project=beta").status_code == 403
    assert client.get("/by/user?project=beta").status_code == 403
    assert client.get("/by/project").status_code == 404  # a project key has no project breakdown
    users = client.get("/by/user?period=90d").text
    assert "ann" in users and "bob" in users and "zed" not in users
    overview = client.get("/?period=90d").text
    assert "zed" not in overview and "beta" not in overview


def test_login_url_format():
    assert login_url("127.0.0.1", 4319, "abc") == "http://127.0.0.1:4319/?token=abc"
    assert login_url("0.0.0.0", 8080, "abc") == "http://127.0.0.1:8080/?token=abc"
    assert login_url("::", 4319, "abc") == "http://127.0.0.1:4319/?token=abc"
    assert login_url("::1", 4319, "abc") == "http://[::1]:4319/?token=abc"
    assert login_url("dash.internal", 4319, "abc") == "http://dash.internal:4319/?token=abc"


def _get(port: int, path: str, cookie: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_serve_prints_a_one_time_login_url(db_url):
    """`tokentrail serve` (a real child process) prints the URL; it logs in once."""
    port = free_port()
    args = [sys.executable, "-c", _SERVE, "serve", "--db", db_url, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"tokentrail serve exited with {process.wait(5)}")
            if line.startswith("Dashboard: "):
                url = line.split()[1]
        assert url is not None and url.startswith(f"http://127.0.0.1:{port}/?token=")
        while time.monotonic() < deadline:
            try:
                first = _get(port, urlsplit(url).path + "?" + urlsplit(url).query)
                break
            except OSError:
                time.sleep(0.05)
        assert first.status == 303 and first.getheader("location") == "/"
        cookie = first.getheader("set-cookie").split(";")[0]
        assert _get(port, "/", cookie).status == 200
        assert _get(port, "/?" + urlsplit(url).query).status == 401  # used up
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
