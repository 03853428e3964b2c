"""API keys: hashed at rest, project isolation, admin key seeding, 401/403/404 answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, make_call, post_calls, project_key

from tokentrail.server import ServerSettings, create_app
from tokentrail.server.auth import create_key, revoke_keys
from tokentrail.server.db.models import api_keys

ENDPOINTS = [
    ("get", "/v1/calls"),
    ("get", "/v1/calls/some-id"),
    ("get", "/v1/usage"),
    ("post", "/v1/calls"),
    ("post", "/traces"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_but_health_needs_a_key(client, method, path):
    for headers in ({}, {"Authorization": "Bearer tt_not-a-real-key-at-all-000000"}, {"Authorization": "Basic eDp5"}):
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/health").status_code == 200


def test_keys_are_stored_hashed(client):
    with client.app.state.db.write() as conn:
        key, _key_id = create_key(conn, project="alpha")
    assert key.startswith("tt_") and len(key) > 40
    with client.app.state.db.read() as conn:
        rows = conn.execute(sa.select(api_keys)).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    assert key not in stored and key[12:] not in stored and ADMIN_KEY not in stored
    assert client.get("/v1/calls", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_a_project_key_sees_only_its_project(client):
    alpha = project_key(client.app, "alpha")
    beta = project_key(client.app, "beta")
    mine = make_call(project="x", user_id="ann")
    theirs = make_call(project="y", user_id="bob")
    post_calls(client, [mine], headers=alpha)
    post_calls(client, [theirs], headers=beta)

    listed = client.get("/v1/calls", headers=alpha).json()["calls"]
    assert [r["id"] for r in listed] == [mine.id]
    assert client.get(f"/v1/calls/{mine.id}", headers=alpha).status_code == 200
    # another project's call is indistinguishable from a missing one
    other = client.get(f"/v1/calls/{theirs.id}", headers=alpha)
    missing = client.get("/v1/calls/does-not-exist", headers=alpha)
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()

    rows = client.get("/v1/usage", params={"group_by": "project,user_id"}, headers=alpha).json()["rows"]
    assert [(r["project"], r["user_id"], r["calls"]) for r in rows] == [("alpha", "ann", 1)]
    assert client.get("/v1/calls", params={"user_id": "bob"}, headers=alpha).json()["calls"] == []

    # asking for another project explicitly is a scope error
    for path in ("/v1/calls", "/v1/usage"):
        assert client.get(path, params={"project": "beta"}, headers=alpha).status_code == 403
        assert client.get(path, params={"project": "alpha"}, headers=alpha).status_code == 200

    everything = client.get("/v1/calls", headers=ADMIN).json()["calls"]
    assert {r["id"] for r in everything} == {mine.id, theirs.id}
    assert client.get(f"/v1/calls/{theirs.id}", headers=ADMIN).status_code == 200


def test_revoked_keys_stop_working(client):
    with client.app.state.db.write() as conn:
        key, key_id = create_key(conn, project="alpha")
        create_key(conn, project="alpha")
        other, _ = create_key(conn, project="beta")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/calls", headers=headers).status_code == 200
    with client.app.state.db.write() as conn:
        assert revoke_keys(conn, key=str(key_id)) == 1
    assert client.get("/v1/calls", headers=headers).status_code == 401
    with client.app.state.db.write() as conn:
        assert revoke_keys(conn, project="alpha") == 1  # the other alpha key; beta untouched
    assert client.get("/v1/calls", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_admin_key_from_the_environment_is_seeded_and_rotated(db_url):
    first = ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY)
    with TestClient(create_app(first)) as client:
        assert client.get("/v1/calls", headers=ADMIN).status_code == 200
    # a restart with the same key keeps one key; a new key replaces it
    with TestClient(create_app(first)) as client:
        assert client.get("/v1/calls", headers=ADMIN).status_code == 200
        with client.app.state.db.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar() == 1
    rotated = "rotated-admin-key-abcdefghijklmnop"
    with TestClient(create_app(first.with_changes(admin_key=rotated))) as client:
        assert client.get("/v1/calls", headers={"Authorization": f"Bearer {rotated}"}).status_code == 200
        assert client.get("/v1/calls", headers=ADMIN).status_code == 401
    with TestClient(create_app(first.with_changes(admin_key=None))) as client:  # unset: keys stay as they are
        assert client.get("/v1/calls", headers={"Authorization": f"Bearer {rotated}"}).status_code == 200
