"""Request dependencies: the database, the caller's key, and the shared call filters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokentrail.core import ValidationError
from tokentrail.core.columns import to_micros, to_pico
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal, authenticate
from tokentrail.server.db.engine import Database
from tokentrail.server.db.filters import CallFilter
from tokentrail.server.settings import ServerSettings

METADATA_PREFIX = "metadata."
_bearer = HTTPBearer(auto_error=False, description="A project or admin API key: `Authorization: Bearer tt_...`")


def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def require_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "an API key is required: Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"})
    with database(request).read() as conn:
        principal = authenticate(conn, credentials.credentials)
    if principal is None:
        raise ApiError(401, "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
    return principal


def parse_time(field: str, value: str | None) -> int | None:
    """An ISO 8601 time or date (UTC when no offset) as epoch microseconds."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValidationError(field, f"{value!r} is not an ISO 8601 time or date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return to_micros(parsed)


def parse_usd(field: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValidationError(field, f"{value!r} is not a decimal amount of USD") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(field, f"{value!r} must be a non-negative amount")
    return to_pico(amount)


def call_filter(
    request: Request,
    since: Annotated[str | None, Query(description="ISO 8601 time or date, inclusive (UTC if no offset).")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 time or date, exclusive.")] = None,
    provider: Annotated[str | None, Query()] = None,
    model: Annotated[
        str | None, Query(description="Requested model (or the response's, when none was requested).")
    ] = None,
    project: Annotated[str | None, Query()] = None,
    user_id: Annotated[str | None, Query()] = None,
    session_id: Annotated[str | None, Query()] = None,
    tenant_id: Annotated[str | None, Query()] = None,
    feature: Annotated[str | None, Query()] = None,
    operation: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(description="ok or error")] = None,
    min_cost: Annotated[str | None, Query(description="Decimal USD, inclusive, e.g. 0.01")] = None,
) -> CallFilter:
    """The filters; `metadata.<key>=<value>` query parameters match `metadata[key]`."""
    equals = {
        name: value
        for name, value in (
            ("provider", provider),
            ("model", model),
            ("project", project),
            ("user_id", user_id),
            ("session_id", session_id),
            ("tenant_id", tenant_id),
            ("feature", feature),
            ("operation", operation),
            ("status", status),
        )
        if value is not None
    }
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise ValidationError(name.replace("\x00", "\\x00"), "must not contain a NUL character")
    metadata = []
    for name, value in request.query_params.multi_items():
        if name.startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX) :]
            if not key or '"' in key or "\\" in key:
                raise ValidationError(name, "needs a metadata key without quotes or backslashes")
            metadata.append((key, value))
    return CallFilter(
        since=parse_time("since", since),
        until=parse_time("until", until),
        equals=equals,
        min_cost=parse_usd("min_cost", min_cost),
        metadata=tuple(metadata),
    )


def scoped_filter(
    principal: Annotated[Principal, Depends(require_principal)], flt: Annotated[CallFilter, Depends(call_filter)]
) -> CallFilter:
    """The filter limited to what the key may see (another project's: 403)."""
    return flt.with_project(principal.scoped_project(flt.equals.get("project")))


__all__ = ["call_filter", "database", "parse_time", "parse_usd", "require_principal", "scoped_filter", "settings"]
