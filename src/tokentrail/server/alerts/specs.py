"""Budgets and alert rules as validated values: parsed from the API's JSON (every error names
its field), written back as JSON. Money is `Decimal` (limits as decimal strings), never float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from tokentrail.core import ValidationError, normalize_provider
from tokentrail.core.columns import MAX_PICO, from_pico, to_pico
from tokentrail.server.alerts.periods import Window, parse_period, parse_window

SCOPE_FIELDS: tuple[str, ...] = ("project", "user_id", "tenant_id", "feature", "model", "provider")
METRICS: tuple[str, ...] = ("spend", "tokens", "error_rate", "p95_latency_ms")
MAX_NAME = 200
MAX_FRACTION = Decimal(10)  # alert_at up to 1000% of the limit
DEFAULT_ALERT_AT: tuple[Decimal, ...] = (Decimal(1),)

BUDGET_FIELDS = frozenset({"name", "scope", "period", "limit_usd", "alert_at", "hard", "webhook_url"})
RULE_FIELDS = frozenset({"name", "metric", "threshold", "window", "scope", "webhook_url", "min_calls"})


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    period: str  # day / week / month (UTC)
    limit: Decimal  # USD
    scope: Mapping[str, str] = field(default_factory=dict)
    alert_at: tuple[Decimal, ...] = DEFAULT_ALERT_AT  # fractions of the limit, ascending
    hard: bool = False
    webhook_url: str | None = None
    id: int = 0
    created_at: int = 0  # epoch microseconds
    updated_at: int = 0

    @property
    def project(self) -> str:
        """The scope's project, '' for every project (how the table stores it)."""
        return self.scope.get("project", "")


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    metric: str  # spend / tokens / error_rate / p95_latency_ms
    threshold: Decimal
    window: Window
    scope: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    min_calls: int = 1  # error_rate and p95 need at least this many calls in the window
    id: int = 0
    created_at: int = 0

    @property
    def project(self) -> str:
        return self.scope.get("project", "")


# ---- field parsers --------------------------------------------------------------------------
def usd_text(value: Decimal) -> str:
    """Canonical decimal string of an amount: `100`, `0.0035`."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def parse_name(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field_name, "must be a non-empty string")
    text = value.strip()
    if len(text) > MAX_NAME or "\x00" in text:
        raise ValidationError(field_name, f"must be at most {MAX_NAME} characters, without NUL")
    return text


def parse_decimal(field_name: str, value: Any, *, money: bool = False) -> Decimal:
    """A decimal from a string or an integer (and, except for money, a JSON number)."""
    if isinstance(value, bool):
        raise ValidationError(field_name, f"must be a number, got {value!r}")
    if isinstance(value, float):
        if money:
            raise ValidationError(field_name, f'must be a decimal string such as "{value}", not a JSON number')
        value = repr(value)  # the shortest spelling that reads back as the same float: what was typed
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationError(field_name, f"must be a decimal string, got {type(value).__name__}")
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise ValidationError(field_name, f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise ValidationError(field_name, f"{value!r} is not a finite number")
    return amount


def parse_limit(field_name: str, value: Any) -> Decimal:
    amount = parse_decimal(field_name, value, money=True)
    if amount <= 0:
        raise ValidationError(field_name, "must be greater than 0")
    if _pico(field_name, amount) == 0:
        raise ValidationError(field_name, "must be at least 1e-12 USD")
    return amount


def _pico(field_name: str, amount: Decimal) -> int:
    """The amount as stored (pico-USD), refusing what a BIGINT cannot hold."""
    try:
        pico = to_pico(amount)
    except ValidationError:
        pico = MAX_PICO + 1
    if pico > MAX_PICO:
        raise ValidationError(field_name, f"must be at most {from_pico(MAX_PICO)} USD")
    return pico


def parse_alert_at(field_name: str, value: Any) -> tuple[Decimal, ...]:
    if not isinstance(value, list):
        raise ValidationError(field_name, "must be a list of fractions of the limit, e.g. [0.5, 0.8, 1.0]")
    fractions: set[Decimal] = set()
    for i, item in enumerate(value):
        fraction = parse_decimal(f"{field_name}[{i}]", item)
        if not 0 < fraction <= MAX_FRACTION:
            raise ValidationError(f"{field_name}[{i}]", f"{item!r} must be a fraction of the limit in (0, 10]")
        fractions.add(fraction.normalize())
    return tuple(sorted(fractions))


def parse_scope(field_name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field_name, f"must be an object with any of {', '.join(SCOPE_FIELDS)}")
    scope: dict[str, str] = {}
    for key, item in value.items():
        if key not in SCOPE_FIELDS:
            raise ValidationError(f"{field_name}.{key}", f"is not a scope field ({', '.join(SCOPE_FIELDS)})")
        if item is None:
            continue
        text = parse_name(f"{field_name}.{key}", item)
        scope[key] = normalize_provider(text) if key == "provider" else text
    return {key: scope[key] for key in SCOPE_FIELDS if key in scope}


def parse_webhook(field_name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2000 or "\x00" in value:
        raise ValidationError(field_name, "must be an http(s) URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field_name, f"{value!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise ValidationError(field_name, f"{value!r} has an invalid port") from None
    return value.strip()


def parse_bool(field_name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field_name, f"must be true or false, got {value!r}")
    return value


def _object(data: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError("body", "must be a JSON object")
    for key in data:
        if key not in allowed:
            raise ValidationError(str(key), f"is not a field (expected {', '.join(sorted(allowed))})")
    return data


def _required(data: Mapping[str, Any], name: str) -> Any:
    if data.get(name) is None:
        raise ValidationError(name, "is required")
    return data[name]


# ---- budgets --------------------------------------------------------------------------------
def parse_budget(data: Any, base: Budget | None = None) -> Budget:
    """A new budget from a POST body, or (`base` given) `base` changed by a PATCH body."""
    body = _object(data, BUDGET_FIELDS)
    if base is None:
        return Budget(
            name=parse_name("name", _required(body, "name")),
            period=parse_period("period", _required(body, "period")),
            limit=parse_limit("limit_usd", _required(body, "limit_usd")),
            scope=parse_scope("scope", body.get("scope")),
            alert_at=parse_alert_at("alert_at", body["alert_at"])
            if body.get("alert_at") is not None
            else DEFAULT_ALERT_AT,
            hard=parse_bool("hard", body.get("hard", False)),
            webhook_url=parse_webhook("webhook_url", body.get("webhook_url")),
        )
    changes: dict[str, Any] = {}
    parsers = {
        "name": ("name", parse_name),
        "period": ("period", parse_period),
        "limit_usd": ("limit", parse_limit),
        "scope": ("scope", parse_scope),
        "alert_at": ("alert_at", parse_alert_at),
        "hard": ("hard", parse_bool),
    }
    for key, value in body.items():
        if key == "webhook_url":
            changes["webhook_url"] = parse_webhook(key, value)
            continue
        attr, parse = parsers[key]
        if value is None:
            raise ValidationError(key, "cannot be null")
        changes[attr] = parse(key, value)
    return replace(base, **changes)


def budget_json(budget: Budget) -> dict[str, Any]:
    return {
        "id": budget.id,
        "name": budget.name,
        "scope": dict(budget.scope),
        "period": budget.period,
        "limit_usd": usd_text(budget.limit),
        "alert_at": [float(f) for f in budget.alert_at],
        "hard": budget.hard,
        "webhook_url": budget.webhook_url,
    }


# ---- alert rules ----------------------------------------------------------------------------
def parse_threshold(metric: str, value: Any) -> Decimal:
    amount = parse_decimal("threshold", value, money=metric == "spend")
    if metric == "tokens":
        if amount != amount.to_integral_value() or amount < 1:
            raise ValidationError("threshold", "must be a whole number of tokens, at least 1")
        return amount.to_integral_value()
    if metric == "error_rate":
        if not 0 < amount <= 1:
            raise ValidationError("threshold", "must be a fraction of calls in (0, 1], e.g. 0.05")
    elif amount <= 0:
        raise ValidationError("threshold", "must be greater than 0")
    if metric == "spend":
        _pico("threshold", amount)
    return amount.normalize()


def parse_rule(data: Any) -> AlertRule:
    body = _object(data, RULE_FIELDS)
    metric = _required(body, "metric")
    if metric not in METRICS:
        raise ValidationError("metric", f"{metric!r} is not one of {', '.join(METRICS)}")
    min_calls = body.get("min_calls", 1)
    if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 1:
        raise ValidationError("min_calls", f"must be an integer >= 1, got {min_calls!r}")
    return AlertRule(
        name=parse_name("name", _required(body, "name")),
        metric=metric,
        threshold=parse_threshold(metric, _required(body, "threshold")),
        window=parse_window("window", _required(body, "window")),
        scope=parse_scope("scope", body.get("scope")),
        webhook_url=parse_webhook("webhook_url", body.get("webhook_url")),
        min_calls=min_calls,
    )


def metric_json(metric: str, value: Decimal | float | int) -> Any:
    """A metric's value in JSON: money as a decimal string, tokens as an integer, an error
    rate (rounded to 6 places) and a latency in ms as numbers."""
    if metric == "spend":
        return usd_text(Decimal(value))
    if metric == "tokens":
        return int(value)
    if metric == "error_rate":
        return float(round(Decimal(value), 6))
    return float(value)


def rule_json(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "metric": rule.metric,
        "threshold": metric_json(rule.metric, rule.threshold),
        "window": rule.window.text,
        "scope": dict(rule.scope),
        "webhook_url": rule.webhook_url,
        "min_calls": rule.min_calls,
    }


def alert_at_text(fractions: tuple[Decimal, ...]) -> str:
    return ",".join(usd_text(f) for f in fractions)


def alert_at_of(text: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(part) for part in text.split(",") if part)


def limit_of(pico: int) -> Decimal:
    return from_pico(pico).normalize()


__all__ = [
    "BUDGET_FIELDS",
    "DEFAULT_ALERT_AT",
    "METRICS",
    "RULE_FIELDS",
    "SCOPE_FIELDS",
    "AlertRule",
    "Budget",
    "alert_at_of",
    "alert_at_text",
    "budget_json",
    "limit_of",
    "metric_json",
    "parse_budget",
    "parse_decimal",
    "parse_rule",
    "parse_scope",
    "parse_threshold",
    "rule_json",
    "usd_text",
]
