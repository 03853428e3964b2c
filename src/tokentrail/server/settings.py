"""One settings object for the collector server: keyword arguments over `TOKENTRAIL_*`
environment variables over defaults. `create_app` takes this object and nothing else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tokentrail.core.errors import ValidationError
from tokentrail.core.settings import Settings

ENV_PREFIX = "TOKENTRAIL_"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4319
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def default_database_url() -> str:
    """The SQLite file the SDK writes by default (`$TOKENTRAIL_HOME/tokentrail.db`)."""
    return sqlite_url(Settings.load().database_path)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def normalize_database_url(url: str) -> str:
    """A SQLAlchemy URL with the driver tokentrail uses: psycopg 3 for PostgreSQL, the
    standard library for SQLite. A bare file path means a SQLite file."""
    text = url.strip()
    if not text:
        raise ValidationError("database_url", "must not be empty")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return sqlite_url(text)
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg3"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith("postgresql+"):
        raise ValidationError("database_url", f"driver {scheme!r} is not supported; use postgresql:// (psycopg 3)")
    if scheme in ("sqlite", "sqlite+pysqlite"):
        if rest in ("", "/") or rest.startswith("/:memory:"):
            raise ValidationError("database_url", "an in-memory SQLite database cannot be shared; give a file path")
        return f"sqlite://{rest}"
    raise ValidationError("database_url", f"{scheme!r} is not a supported database (sqlite or postgresql)")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not an integer") from None


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(name, f"{raw!r} is not a boolean (use true/false)")


# setting name -> (environment variable, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "database_url": ("TOKENTRAIL_DB", lambda n, raw: raw),
    "host": ("TOKENTRAIL_HOST", lambda n, raw: raw),
    "port": ("TOKENTRAIL_PORT", _int),
    "admin_key": ("TOKENTRAIL_ADMIN_KEY", lambda n, raw: raw or None),
    "max_body_bytes": ("TOKENTRAIL_MAX_BODY_BYTES", _int),
    "migrate": ("TOKENTRAIL_MIGRATE", _bool),
    "sqlite_synchronous": ("TOKENTRAIL_SQLITE_SYNCHRONOUS", lambda n, raw: raw),
}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Every collector setting. `ServerSettings.load(**overrides)` reads the environment."""

    database_url: str = ""  # empty: the SDK's default SQLite file
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    admin_key: str | None = None  # TOKENTRAIL_ADMIN_KEY: seeded as an admin key at start
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # per request, compressed and decompressed
    migrate: bool = True  # run Alembic migrations to head at start
    # SQLite durability of an acknowledged batch: FULL survives power loss, NORMAL only a crash
    sqlite_synchronous: str = "FULL"
    max_page_size: int = 1000
    pool_size: int = 5

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, (var, parse) in _ENV.items():
            raw = env.get(var)
            if raw is not None:
                values[name] = parse(var, raw)
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise ValidationError(name, "is not a server setting")
            if value is not None:
                values[name] = value
        settings = cls(**values)
        if not settings.database_url:
            settings = replace(settings, database_url=default_database_url())
        else:
            settings = replace(settings, database_url=normalize_database_url(settings.database_url))
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ValidationError("port", f"{self.port} is not a TCP port")
        if self.max_body_bytes <= 0:
            raise ValidationError("max_body_bytes", "must be positive")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValidationError("sqlite_synchronous", f"{self.sqlite_synchronous!r} is not OFF/NORMAL/FULL/EXTRA")
        if self.admin_key is not None and len(self.admin_key) < 20:
            raise ValidationError("admin_key", "must be at least 20 characters")

    def to_env(self) -> dict[str, str]:
        """The environment that makes `ServerSettings.load()` in a worker process give these settings."""
        env = {
            "TOKENTRAIL_DB": self.database_url,
            "TOKENTRAIL_HOST": self.host,
            "TOKENTRAIL_PORT": str(self.port),
            "TOKENTRAIL_MAX_BODY_BYTES": str(self.max_body_bytes),
            "TOKENTRAIL_MIGRATE": "true" if self.migrate else "false",
            "TOKENTRAIL_SQLITE_SYNCHRONOUS": self.sqlite_synchronous,
        }
        if self.admin_key:
            env["TOKENTRAIL_ADMIN_KEY"] = self.admin_key
        return env

    def with_changes(self, **changes: Any) -> ServerSettings:
        return replace(self, **changes)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "ServerSettings",
    "default_database_url",
    "normalize_database_url",
    "sqlite_url",
]
