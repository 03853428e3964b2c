"""`tokentrail budgets add|list|rm`: budgets on the collector.

Through a running collector (`--url` and `--api-key`, or `TOKENTRAIL_COLLECTOR_URL` /
`TOKENTRAIL_API_KEY`), whose key decides which project's budgets it manages; or straight
in its database (`--db`, default: the SDK's SQLite file), with admin rights.
"""

from __future__ import annotations

import http.client
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from tokentrail.cli.app import app
from tokentrail.cli.serve import DB_HELP, load_settings
from tokentrail.core import ValidationError
from tokentrail.server.alerts import periods
from tokentrail.server.alerts.evaluate import budget_status
from tokentrail.server.alerts.specs import parse_budget
from tokentrail.server.db import budgets as store
from tokentrail.server.db import migrate, rollups
from tokentrail.server.db.engine import Database

budgets_app = typer.Typer(no_args_is_help=True, help="Spend budgets per scope and period (day, week, month; UTC).")
app.add_typer(budgets_app, name="budgets")

URL_HELP = "Collector URL, e.g. http://127.0.0.1:4319 (manages budgets through its API)."
KEY_HELP = "API key for --url (a project key manages its project's budgets)."
UrlOption = Annotated[str | None, typer.Option("--url", envvar="TOKENTRAIL_COLLECTOR_URL", help=URL_HELP)]
KeyOption = Annotated[str | None, typer.Option("--api-key", envvar="TOKENTRAIL_API_KEY", help=KEY_HELP)]
DbOption = Annotated[str | None, typer.Option("--db", help=DB_HELP + " Used when --url is not given.")]


class _Failed(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---- the two back ends ----------------------------------------------------------------------
def _request(url: str, api_key: str | None, method: str, path: str, body: Any = None) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Failed(f"--url {url!r} is not an http(s) URL", 2)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    conn = cls(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            method, parts.path.rstrip("/") + path, body=None if body is None else json.dumps(body), headers=headers
        )
        response = conn.getresponse()
        raw = response.read()
    except OSError as exc:
        raise _Failed(f"cannot reach {url}: {exc}") from None
    finally:
        conn.close()
    data = json.loads(raw) if raw else None
    if response.status >= 400:
        detail = data.get("detail") if isinstance(data, dict) else raw.decode(errors="replace")
        if isinstance(detail, list):
            detail = "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in detail if isinstance(d, dict))
        raise _Failed(f"HTTP {response.status}: {detail}", 2 if response.status in (400, 409) else 1)
    return data


def _database(url: str | None) -> Database:
    settings = load_settings(database_url=url)
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    migrate.upgrade(database.engine)  # a fresh database gets its tables, as `serve` would
    return database


def _db_add(db: Database, body: dict[str, Any]) -> dict[str, Any]:
    budget = parse_budget(body)
    try:
        with db.write() as conn:
            created = store.create_budget(conn, budget, periods.wall_micros())
    except store.NameTaken as exc:
        raise _Failed(f"name: {exc.reason}", 2) from None
    return _db_status(db, created.id)


def _db_status(db: Database, budget_id: int) -> dict[str, Any]:
    with db.read() as conn:
        budget = store.get_budget(conn, budget_id)
        assert budget is not None
        return budget_status(conn, budget, periods.now()).to_json()


def _db_list(db: Database) -> list[dict[str, Any]]:
    rollups.catch_up(db)
    at = periods.now()
    with db.read() as conn:
        return [budget_status(conn, b, at).to_json() for b in store.list_budgets(conn)]


# ---- output ---------------------------------------------------------------------------------
def _scope_text(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "everything"


def _describe(budget: dict[str, Any]) -> str:
    kind = "hard" if budget["hard"] else "soft"
    return (
        f"budget {budget['id']} {budget['name']!r}: ${budget['limit_usd']} per {budget['period']} ({kind}) "
        f"for {_scope_text(budget['scope'])}; spent ${budget['spent_usd']} since {budget['period_start']}"
    )


def _parse_scope(items: list[str]) -> dict[str, str]:
    scope: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE (e.g. user_id=u1)", param_hint="--scope")
        scope[key.strip()] = value.strip()
    return scope


def _parse_fractions(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of fractions", param_hint="--alert-at"
        ) from None


def _run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValidationError as exc:
        typer.echo(f"error: {exc.field}: {exc.reason}", err=True)
        raise typer.Exit(2) from None
    except _Failed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.code) from None


# ---- commands -------------------------------------------------------------------------------
@budgets_app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="Unique within the project.")],
    limit: Annotated[str, typer.Option("--limit", help="Limit in USD, e.g. 100 or 12.50.")],
    period: Annotated[str, typer.Option("--period", help="day, week (ISO, from Monday) or month; UTC.")] = "month",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="KEY=VALUE, repeatable: project, user_id, tenant_id, feature, model, provider."),
    ] = None,
    hard: Annotated[bool, typer.Option("--hard", help="Refuse calls in the SDK once spent (enforce_budgets).")] = False,
    alert_at: Annotated[str | None, typer.Option("--alert-at", help="Fractions to alert at, e.g. 0.5,0.8,1.")] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="URL alerts are POSTed to.")] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
) -> None:
    """Create a budget."""
    body: dict[str, Any] = {
        "name": name,
        "period": period,
        "limit_usd": limit,
        "scope": _parse_scope(scope or []),
        "hard": hard,
        "webhook_url": webhook,
    }
    fractions = _parse_fractions(alert_at)
    if fractions is not None:
        body["alert_at"] = fractions
    if url:
        created = _run(_request, url, api_key, "POST", "/v1/budgets", body)
    else:
        database = _database(db)
        try:
            created = _run(_db_add, database, body)
        finally:
            database.dispose()
    typer.echo("created " + _describe(created))


def _listed(url: str | None, api_key: str | None, db: str | None) -> list[dict[str, Any]]:
    if url:
        return _run(_request, url, api_key, "GET", "/v1/budgets")["budgets"]  # type: ignore[no-any-return]
    database = _database(db)
    try:
        return _run(_db_list, database)  # type: ignore[no-any-return]
    finally:
        database.dispose()


@budgets_app.command("list")
def list_budgets(
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List budgets with their spend in the current period."""
    listed = _listed(url, api_key, db)
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    table = Table(header_style="bold")
    for column in ("id", "name", "scope", "period", "limit", "spent", "remaining", "hard", "alert at", "resets"):
        table.add_column(column)
    for b in listed:
        table.add_row(
            str(b["id"]),
            b["name"],
            _scope_text(b["scope"]),
            b["period"],
            "$" + b["limit_usd"],
            "$" + b["spent_usd"],
            "$" + b["remaining_usd"],
            "hard" if b["hard"] else "",
            ", ".join(f"{f:g}" for f in b["alert_at"]),
            b["period_end"],
        )
    Console(width=None if Console().is_terminal else 200).print(table)


@budgets_app.command("rm")
def remove(
    budget: Annotated[str, typer.Argument(help="The budget's id or name.")],
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
) -> None:
    """Delete a budget (its alert history stays)."""
    if budget.isdigit():
        budget_id = int(budget)
    else:
        matches = [b for b in _listed(url, api_key, db) if b["name"] == budget]
        if not matches:
            typer.echo(f"error: no budget named {budget!r}", err=True)
            raise typer.Exit(1)
        if len(matches) > 1:
            ids = ", ".join(f"{b['id']} ({_scope_text(b['scope'])})" for b in matches)
            typer.echo(f"error: several budgets are named {budget!r}: {ids}; give the id", err=True)
            raise typer.Exit(2)
        budget_id = matches[0]["id"]
    if url:
        _run(_request, url, api_key, "DELETE", f"/v1/budgets/{budget_id}")
    else:
        database = _database(db)
        try:
            with database.write() as conn:
                deleted = store.delete_budget(conn, budget_id)
        finally:
            database.dispose()
        if not deleted:
            typer.echo(f"error: budget {budget_id} not found", err=True)
            raise typer.Exit(1)
    typer.echo(f"deleted budget {budget_id}")


__all__ = ["budgets_app"]
