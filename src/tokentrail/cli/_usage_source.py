"""Where `report`, `export` and `whatif` read recorded calls from.

- `LocalSource`: a database file or URL (default: the SDK's `$TOKENTRAIL_HOME/tokentrail.db`),
  read through the collector's own storage code (migrations, rollup catch-up, `usage()`,
  `list_calls()`), so the CLI and `GET /v1/usage` share one aggregation. Needs the `server`
  extra; no server has to run.
- `RemoteSource`: a running collector over HTTP (`GET /v1/usage`, cursor-paginated
  `GET /v1/calls`), with the standard library only.

Both give the same shapes: usage rows as `/v1/usage` answers them, and call records as
`LLMCall.to_dict()` dicts, newest first, streamed page by page.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer

from tokentrail.core import MissingExtraError, ValidationError
from tokentrail.core.columns import to_micros

try:  # reading a database directly needs the collector's storage code (the `server` extra)
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from tokentrail.server.db import calls as stored_calls
    from tokentrail.server.db import migrate, rollups
    from tokentrail.server.db import usage as usage_db
    from tokentrail.server.db.engine import Database
    from tokentrail.server.db.filters import CallFilter
    from tokentrail.server.settings import ServerSettings

    _SERVER_MISSING: str | None = None
except ImportError:
    _SERVER_MISSING = str(MissingExtraError("server", "Reading the database without a running collector"))

PAGE_SIZE = 1000  # the collector's largest page
TIME_KEYS: tuple[str, ...] = ("hour", "day", "week", "month")
DIMENSIONS: tuple[str, ...] = (
    "provider",
    "model",
    "project",
    "user_id",
    "session_id",
    "tenant_id",
    "feature",
    "operation",
    "status",
)
# what people type -> the API's group key
BY_ALIASES: dict[str, str] = {"user": "user_id", "tenant": "tenant_id", "session": "session_id"}
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Shared option declarations (one help text for every command).
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite file (default: the SDK's $TOKENTRAIL_HOME/tokentrail.db)."),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Read from a running collector instead, e.g. http://127.0.0.1:4319.")
]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", envvar="TOKENTRAIL_API_KEY", help="API key for --url.", show_default=False)
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="End (exclusive): 2d, 2025-10-15, ISO time.")]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Only this project.")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Only this user id.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Only this tenant id.")]
FeatureOpt = Annotated[str | None, typer.Option("--feature", help="Only this feature.")]


class SourceError(Exception):
    """A problem the user can fix (bad option, missing database, unreachable server)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---- options ------------------------------------------------------------------------------
def parse_when(value: str | None, option: str, *, now: datetime | None = None) -> datetime | None:
    """`7d`, `12h`, `30m`, `2w` (that long before now), a date (UTC midnight), an ISO time
    (UTC when it has no offset), or `all` / empty for no bound."""
    if value is None or value.strip().lower() in ("", "all"):
        return None
    text = value.strip()
    relative = _RELATIVE.match(text.lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise SourceError(
                f"{option}: {value!r} is not a duration (7d, 12h, 30m, 2w), a date (YYYY-MM-DD) or an ISO time",
                exit_code=2,
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_by(values: Sequence[str] | None, default: Sequence[str] = ("model",)) -> tuple[str, ...]:
    """`--by` values (repeatable, comma lists) as API group keys: at most one time bucket."""
    raw = [part.strip().lower() for value in (values or ()) for part in value.split(",") if part.strip()]
    keys = tuple(BY_ALIASES.get(part, part) for part in raw) if raw else tuple(default)
    allowed = (*DIMENSIONS, *TIME_KEYS)
    for key in keys:
        if key not in allowed:
            names = "provider, model, user, tenant, feature, project, session, operation, status, " + ", ".join(
                TIME_KEYS
            )
            raise SourceError(f"--by: {key!r} is not one of {names}", exit_code=2)
    if len(set(keys)) != len(keys):
        raise SourceError("--by: a key is named twice", exit_code=2)
    if sum(key in TIME_KEYS for key in keys) > 1:
        raise SourceError("--by: at most one of hour, day, week, month", exit_code=2)
    return keys


@dataclass(frozen=True, slots=True)
class Query:
    """Time range [since, until) and equality filters (API names: provider, model, user_id...)."""

    since: datetime | None = None
    until: datetime | None = None
    equals: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, since: datetime | None, until: datetime | None, **equals: str | None) -> Query:
        if since is not None and until is not None and since >= until:
            raise SourceError("--since must be before --until", exit_code=2)
        return cls(since, until, {k: v for k, v in equals.items() if v is not None})

    def params(self) -> dict[str, str]:
        """As query parameters of the collector's API."""
        out = {k: v for k, v in self.equals.items()}
        if self.since is not None:
            out["since"] = self.since.astimezone(UTC).isoformat()
        if self.until is not None:
            out["until"] = self.until.astimezone(UTC).isoformat()
        return out

    def describe(self) -> str:
        since = self.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if self.since else "the beginning"
        until = self.until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if self.until else "now"
        filters = ", ".join(f"{k}={v}" for k, v in self.equals.items())
        return f"{since} to {until}" + (f" ({filters})" if filters else "")


# ---- sources ------------------------------------------------------------------------------
class UsageSource:
    """Usage aggregates and call records, from wherever they are stored."""

    label: str = ""

    def usage(self, group_by: Sequence[str], query: Query) -> list[dict[str, Any]]:
        raise NotImplementedError

    def calls(self, query: Query, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every matching record, newest first, fetched one page at a time."""
        raise NotImplementedError

    def count(self, query: Query) -> int:
        rows = self.usage((), query)
        return int(rows[0]["calls"]) if rows else 0

    def close(self) -> None:
        pass

    def __enter__(self) -> UsageSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class LocalSource(UsageSource):
    """A database read with the collector's storage code; migrates (adopting an SDK file) first."""

    def __init__(self, database_url: str | None = None) -> None:
        if _SERVER_MISSING is not None:
            raise SourceError(f"{_SERVER_MISSING} (or read a running collector with --url)", exit_code=2)
        try:
            settings = ServerSettings.load(database_url=database_url)
        except ValidationError as exc:
            raise SourceError(f"--db: {exc}", exit_code=2) from None
        url = settings.database_url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                raise SourceError(
                    f"no tokentrail database at {path}: nothing has been recorded there yet "
                    "(the SDK creates it on its first call; try `tokentrail demo`), or pass --db or --url"
                )
        self.db = Database(url, sqlite_synchronous=settings.sqlite_synchronous)
        self.label = self.db.display_url
        try:
            self._migrate(settings.migrate)
            rollups.catch_up(self.db)  # calls the SDK wrote straight into the file
        except (SQLAlchemyError, CommandError) as exc:
            self.db.dispose()
            raise SourceError(f"cannot read {self.label}: {_first_line(exc)}") from None
        except SourceError:
            self.db.dispose()
            raise

    def _migrate(self, allowed: bool) -> None:
        """Bring the schema to head as `tokentrail serve` does (adopting a file the SDK created),
        unless TOKENTRAIL_MIGRATE=false says the database is migrated as a deploy step."""
        at, head = migrate.current(self.db.engine), migrate.head()
        if at == head:
            return
        if not allowed:
            raise SourceError(f"{self.label} is at revision {at}, not {head}: run `tokentrail db upgrade`")
        migrate.upgrade(self.db.engine)

    def _filter(self, query: Query) -> CallFilter:
        return CallFilter(
            since=None if query.since is None else to_micros(query.since),
            until=None if query.until is None else to_micros(query.until),
            equals=dict(query.equals),
        )

    def usage(self, group_by: Sequence[str], query: Query) -> list[dict[str, Any]]:
        try:
            with self.db.read() as conn:
                return usage_db.usage(conn, tuple(group_by), self._filter(query)).rows
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot read {self.label}: {_first_line(exc)}") from None

    def calls(self, query: Query, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        flt = self._filter(query)
        cursor: str | None = None
        while True:
            # one short read transaction per page: a long export never holds a snapshot open
            with self.db.read() as conn:
                records, cursor = stored_calls.list_calls(conn, flt, limit=page_size, cursor=cursor)
            yield from records
            if cursor is None:
                return

    def close(self) -> None:
        self.db.dispose()


class RemoteSource(UsageSource):
    """A running collector's HTTP API."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SourceError(f"--url: {url!r} is not an http(s) URL such as http://127.0.0.1:4319", exit_code=2)
        if not api_key:
            raise SourceError("--api-key (or TOKENTRAIL_API_KEY) is required with --url", exit_code=2)
        self.base = url.strip().rstrip("/")
        self.label = self.base
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = timeout

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        address = f"{self.base}{path}?{urllib.parse.urlencode(params)}" if params else f"{self.base}{path}"
        request = urllib.request.Request(address, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SourceError(f"{self.base}{path}: {exc.code} {_api_problem(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"cannot reach the collector at {self.base}: {reason}") from None

    def usage(self, group_by: Sequence[str], query: Query) -> list[dict[str, Any]]:
        params = query.params()
        if group_by:
            params["group_by"] = ",".join(group_by)
        rows: list[dict[str, Any]] = self.get("/v1/usage", params)["rows"]
        return rows

    def calls(self, query: Query, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        params = {**query.params(), "limit": str(page_size)}
        while True:
            page = self.get("/v1/calls", params)
            yield from page["calls"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]


def _api_problem(exc: urllib.error.HTTPError) -> str:
    """The API's own explanation: `detail` as a string or a list of {field, reason}."""
    try:
        detail = json.loads(exc.read()).get("detail")
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)
    if isinstance(detail, list):
        return "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in detail if isinstance(d, dict))
    return str(detail or exc.reason)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_source(db: str | None, url: str | None, api_key: str | None) -> UsageSource:
    if url and db:
        raise SourceError("give either --db or --url, not both", exit_code=2)
    if url:
        return RemoteSource(url, api_key)
    return LocalSource(db)


def fail(exc: SourceError) -> typer.Exit:
    """Print the problem on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


__all__ = [
    "BY_ALIASES",
    "DIMENSIONS",
    "PAGE_SIZE",
    "TIME_KEYS",
    "LocalSource",
    "Query",
    "RemoteSource",
    "SourceError",
    "UsageSource",
    "fail",
    "open_source",
    "parse_by",
    "parse_when",
]
