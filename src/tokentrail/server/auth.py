"""API keys: project keys and admin keys, stored hashed.

A key is `tt_` + 43 URL-safe random characters (256 bits). At rest only its first 11
characters (`prefix`, to find the row and to show in listings), a random per-key salt and
sha256(salt + key) are kept; verification recomputes the hash and compares in constant time.
A project key reads and writes only its project; an admin key (`TOKENTRAIL_ADMIN_KEY`, or
`keys create --admin`) sees every project.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core import ValidationError
from tokentrail.core.columns import from_micros, to_micros
from tokentrail.server.db.models import api_keys

KEY_PREFIX = "tt_"
PREFIX_LENGTH = 11  # "tt_" + 8 characters
ENV_ADMIN_NAME = "TOKENTRAIL_ADMIN_KEY"  # the name of the key seeded from the environment


class Forbidden(Exception):
    """A valid key asked for something outside its scope (answered 403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as."""

    key_id: int
    project: str | None  # None for an admin key
    admin: bool

    def scoped_project(self, requested: str | None) -> str | None:
        """The project a query may read: a project key's own (asking for another is
        Forbidden); for an admin key, whatever was asked (None: all)."""
        if self.admin:
            return requested
        if requested is not None and requested != self.project:
            raise Forbidden(f"this key belongs to project {self.project!r}")
        return self.project


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    prefix: str
    project: str | None
    admin: bool
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()


def _now() -> int:
    return to_micros(datetime.now(UTC))


def _check_project(project: str | None, admin: bool) -> None:
    if admin and project is not None:
        raise ValidationError("project", "an admin key belongs to no project")
    if not admin and (project is None or not project.strip()):
        raise ValidationError("project", "is required for a project key")


def store_key(conn: Connection, key: str, *, project: str | None, admin: bool = False, name: str | None = None) -> int:
    """Store a key (hashed); returns its id."""
    _check_project(project, admin)
    if len(key) < 20:
        raise ValidationError("key", "is too short")
    salt = secrets.token_hex(16)
    result = conn.execute(
        api_keys.insert()
        .values(
            prefix=key[:PREFIX_LENGTH],
            salt=salt,
            key_hash=hash_key(salt, key),
            project=project,
            admin=admin,
            name=name,
            created_at=_now(),
        )
        .returning(api_keys.c.id)
    )
    return int(result.scalar_one())


def create_key(
    conn: Connection, *, project: str | None, admin: bool = False, name: str | None = None
) -> tuple[str, int]:
    """A new random key; returns (the key, shown once, and its id)."""
    key = generate_key()
    return key, store_key(conn, key, project=project, admin=admin, name=name)


def _matching(conn: Connection, key: str, *, active: bool = True) -> list[sa.Row]:
    query = sa.select(api_keys).where(api_keys.c.prefix == key[:PREFIX_LENGTH])
    if active:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [row for row in conn.execute(query) if hmac.compare_digest(row.key_hash, hash_key(row.salt, key))]


def authenticate(conn: Connection, key: str) -> Principal | None:
    """The principal of an active key, or None."""
    if not key:
        return None
    for row in _matching(conn, key):
        return Principal(key_id=row.id, project=row.project, admin=bool(row.admin))
    return None


def seed_admin_key(conn: Connection, key: str) -> bool:
    """Make `key` an active admin key (TOKENTRAIL_ADMIN_KEY); a previously seeded different
    key is revoked, so changing the variable rotates the key. Returns True if stored now."""
    current = [row for row in _matching(conn, key) if row.admin]
    conn.execute(
        api_keys.update()
        .where(api_keys.c.name == ENV_ADMIN_NAME, api_keys.c.revoked_at.is_(None))
        .where(api_keys.c.id.notin_([row.id for row in current]))
        .values(revoked_at=_now())
    )
    if current:
        return False
    store_key(conn, key, project=None, admin=True, name=ENV_ADMIN_NAME)
    return True


def list_keys(conn: Connection, *, project: str | None = None, include_revoked: bool = True) -> list[KeyInfo]:
    query = sa.select(api_keys).order_by(api_keys.c.id)
    if project is not None:
        query = query.where(api_keys.c.project == project)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [
        KeyInfo(
            id=row.id,
            prefix=row.prefix,
            project=row.project,
            admin=bool(row.admin),
            name=row.name,
            created_at=from_micros(row.created_at),
            revoked_at=from_micros(row.revoked_at) if row.revoked_at is not None else None,
        )
        for row in conn.execute(query)
    ]


def revoke_keys(conn: Connection, *, project: str | None = None, key: str | None = None) -> int:
    """Revoke one key (its id, prefix or full text), limited to `project` when given, or
    every active key of `project`. Returns how many were revoked."""
    if key is None and project is None:
        raise ValidationError("project", "name a project, a key, or both")
    query = api_keys.update().where(api_keys.c.revoked_at.is_(None)).values(revoked_at=_now())
    if project is not None:
        query = query.where(api_keys.c.project == project)
    if key is not None:
        if key.isdigit():
            query = query.where(api_keys.c.id == int(key))
        elif len(key) > PREFIX_LENGTH:
            ids = [row.id for row in _matching(conn, key)]
            query = query.where(api_keys.c.id.in_(ids))
        else:
            query = query.where(api_keys.c.prefix == key)
    return conn.execute(query).rowcount or 0


__all__ = [
    "ENV_ADMIN_NAME",
    "KEY_PREFIX",
    "Forbidden",
    "KeyInfo",
    "Principal",
    "authenticate",
    "create_key",
    "generate_key",
    "hash_key",
    "list_keys",
    "revoke_keys",
    "seed_admin_key",
    "store_key",
]
