"""Dashboard logins: one-time login tokens and cookie sessions, stored in the database.

Only sha256 of a token is stored. A login token (the URL `tokentrail serve` prints) is
deleted when redeemed, in the same transaction that opens the session, so it works once even
with several instances racing for it. A session opened with an API key ends when the key is
revoked; every session ends at logout or after `SESSION_TTL`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core.columns import to_micros
from tokentrail.server.auth import Principal, authenticate
from tokentrail.server.db.dashboard_models import dashboard_sessions
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import api_keys

COOKIE_NAME = "tokentrail_session"
LOGIN_TOKEN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
LOGIN = "login"
SESSION = "session"
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> int:
    return to_micros(datetime.now(UTC))


def _store(conn: Connection, kind: str, ttl: timedelta, *, key_id: int | None, project: str | None, admin: bool) -> str:
    token = secrets.token_urlsafe(32)
    now = _now()
    conn.execute(dashboard_sessions.delete().where(dashboard_sessions.c.expires_at <= now))  # housekeeping
    conn.execute(
        dashboard_sessions.insert().values(
            token_hash=_hash(token),
            kind=kind,
            key_id=key_id,
            project=project,
            admin=admin,
            created_at=now,
            expires_at=now + ttl // timedelta(microseconds=1),
        )
    )
    return token


def issue_login_token(db: Database) -> str:
    """A new one-time admin login token, valid for `LOGIN_TOKEN_TTL`."""
    with db.write() as conn:
        return _store(conn, LOGIN, LOGIN_TOKEN_TTL, key_id=None, project=None, admin=True)


def login_url(host: str, port: int, token: str) -> str:
    """`http://host:port/?token=...`; a wildcard bind address is shown as 127.0.0.1."""
    shown = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"  # an IPv6 literal
    return f"http://{shown}:{port}/?token={token}"


def redeem_login_token(db: Database, token: str) -> str | None:
    """Open an admin session with a login token (which is used up); None when the token is
    unknown, used or expired."""
    if not token:
        return None
    with db.write() as conn:
        used = conn.execute(
            dashboard_sessions.delete().where(
                dashboard_sessions.c.token_hash == _hash(token),
                dashboard_sessions.c.kind == LOGIN,
                dashboard_sessions.c.expires_at > _now(),
            )
        ).rowcount
        if used != 1:
            return None
        return _store(conn, SESSION, SESSION_TTL, key_id=None, project=None, admin=True)


def login_with_key(db: Database, key: str) -> tuple[str, Principal] | None:
    """Open a session as an API key (project or admin); None for an unknown or revoked key."""
    with db.write() as conn:
        principal = authenticate(conn, key.strip())
        if principal is None:
            return None
        token = _store(
            conn,
            SESSION,
            SESSION_TTL,
            key_id=principal.key_id,
            project=principal.project,
            admin=principal.admin,
        )
    return token, principal


def session_principal(db: Database, token: str | None) -> Principal | None:
    """Who a session cookie acts as; None when absent, expired, logged out or its key revoked."""
    if not token:
        return None
    s = dashboard_sessions
    query = (
        sa.select(s.c.key_id, s.c.project, s.c.admin, api_keys.c.revoked_at, api_keys.c.id.label("found"))
        .select_from(s.outerjoin(api_keys, api_keys.c.id == s.c.key_id))
        .where(s.c.token_hash == _hash(token), s.c.kind == SESSION, s.c.expires_at > _now())
    )
    with db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    if row.key_id is not None and (row.found is None or row.revoked_at is not None):
        return None
    return Principal(key_id=row.key_id if row.key_id is not None else 0, project=row.project, admin=bool(row.admin))


def end_session(db: Database, token: str | None) -> None:
    if not token:
        return
    with db.write() as conn:
        conn.execute(
            dashboard_sessions.delete().where(
                dashboard_sessions.c.token_hash == _hash(token), dashboard_sessions.c.kind == SESSION
            )
        )


__all__ = [
    "COOKIE_NAME",
    "LOGIN_TOKEN_TTL",
    "SESSION_TTL",
    "end_session",
    "issue_login_token",
    "login_url",
    "login_with_key",
    "redeem_login_token",
    "session_principal",
]
