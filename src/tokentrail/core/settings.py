"""One settings object for the SDK: keyword arguments over `TOKENTRAIL_*` environment
variables over defaults. Factories (sinks, pricing) take this object and nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tokentrail.core.errors import ValidationError

ENV_PREFIX = "TOKENTRAIL_"


def _to_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(name, f"{raw!r} is not a boolean (use true/false)")


def _to_int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not an integer") from None


def _to_float(name: str, raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not a number") from None


def _to_list(name: str, raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def default_home() -> Path:
    return Path(os.environ.get("TOKENTRAIL_HOME") or Path.home() / ".tokentrail")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every SDK setting. `Settings.load(**overrides)` reads the environment."""

    # SPEC §4 configure() names
    sinks: tuple[Any, ...] = ("sqlite",)  # names ("sqlite", "otel", "log", "collector", "memory") or Sink objects
    service_name: str | None = None
    environment: str | None = None
    capture_content: bool = False
    prices: str | None = None  # path of a TOML overrides file
    collector_url: str | None = None
    api_key: str | None = None
    enforce_budgets: bool = False
    # budgets (tracking/budgets.py): seconds between re-syncs with the collector, and a
    # callable given a BudgetWarning when a soft threshold (alert_at) is reached
    budget_sync_interval: float = 15.0
    on_budget_warning: Callable[[Any], Any] | None = None
    queue_size: int = 10_000
    spool_dir: str | None = None
    spool_max_bytes: int = 256 * 1024 * 1024
    # where local state lives; the SQLite sink writes `<home>/tokentrail.db` unless sqlite_path says otherwise
    home: str | None = None
    sqlite_path: str | None = None
    project: str | None = None
    # batching of the background worker
    batch_size: int = 512
    flush_interval: float = 1.0
    # collector delivery
    collector_timeout: float = 10.0
    collector_max_retries: int = 5
    # OpenTelemetry: also emit the newer per-category usage counters
    otel_usage_counters: bool = False
    # OpenAI streams without include_usage: add it (hiding the extra chunk) instead of estimating
    inject_stream_usage: bool = False
    # Called with the Content (messages, result) of every captured call before it is recorded;
    # returns the Content to keep (redacted) or None to drop it. Only used with capture_content.
    content_redactor: Callable[[Any], Any] | None = None
    # provider name for OpenAI-compatible endpoints tokentrail cannot name from the base URL (vLLM, TGI, ...)
    openai_compatible_provider: str | None = None

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else default_home()

    @property
    def database_path(self) -> Path:
        return Path(self.sqlite_path) if self.sqlite_path else self.home_path / "tokentrail.db"

    @property
    def spool_path(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else self.home_path / "spool"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `TOKENTRAIL_<NAME>` environment values, then explicit keyword arguments."""
        env = os.environ if env is None else env
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name in known:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = _CASTS.get(name, _identity)(ENV_PREFIX + name.upper(), raw)
        for name, value in overrides.items():
            if name not in known:
                raise ValidationError(name, "is not a tokentrail setting")
            if value is not None:
                values[name] = tuple(value) if name == "sinks" else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("queue_size", "batch_size", "spool_max_bytes"):
            if getattr(self, name) <= 0:
                raise ValidationError(name, "must be positive")
        if self.flush_interval <= 0:
            raise ValidationError("flush_interval", "must be positive")
        if "collector" in self.sinks and not self.collector_url:
            raise ValidationError("collector_url", "is required when the collector sink is enabled")
        if self.enforce_budgets and not self.collector_url:
            raise ValidationError(
                "collector_url", "is required when enforce_budgets is on (budgets live on the collector)"
            )
        if not self.budget_sync_interval > 0:
            raise ValidationError("budget_sync_interval", "must be positive")
        if self.on_budget_warning is not None and not callable(self.on_budget_warning):
            raise ValidationError("on_budget_warning", "must be a callable taking a BudgetWarning")

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _identity(name: str, raw: str) -> str:
    return raw


_CASTS: dict[str, Callable[[str, str], Any]] = {
    "sinks": lambda name, raw: tuple(_to_list(name, raw)),
    "capture_content": _to_bool,
    "enforce_budgets": _to_bool,
    "otel_usage_counters": _to_bool,
    "inject_stream_usage": _to_bool,
    "queue_size": _to_int,
    "spool_max_bytes": _to_int,
    "batch_size": _to_int,
    "collector_max_retries": _to_int,
    "flush_interval": _to_float,
    "collector_timeout": _to_float,
    "budget_sync_interval": _to_float,
}

__all__ = ["ENV_PREFIX", "Settings", "default_home", "field"]
