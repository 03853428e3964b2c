"""Templates (package data, Jinja2 with autoescaping) and the headers every page is sent with."""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tokentrail.server.auth import Principal
from tokentrail.server.dashboard import charts
from tokentrail.server.dashboard.format import FILTERS, call_duration_ms, percent, percent_of
from tokentrail.server.dashboard.queries import BREAKDOWNS, PERIODS

PACKAGE = "tokentrail.server.dashboard"
STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8"}
# Nothing is loaded from elsewhere, no inline script or style runs, and no page can be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no URL leaves through Referer; `no-referrer` would make Origin null
    "Cache-Control": "no-store",
}
# Navigation (one entry per page; the last is server/dashboard/budgets_page.py).
NAV: list[tuple[str, str, str]] = [
    ("Overview", "/", "overview"),
    ("Calls", "/calls", "calls"),
    ("Users", "/by/user", "by-user"),
    ("Tenants", "/by/tenant", "by-tenant"),
    ("Features", "/by/feature", "by-feature"),
    ("Budgets & alerts", "/budgets", "budgets"),
]

_env = Environment(
    loader=PackageLoader(PACKAGE, "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(FILTERS)
_env.globals.update(
    nav=NAV,
    periods=PERIODS,
    breakdowns=BREAKDOWNS,
    meter=charts.meter,
    swatch=charts.swatch,
    percent=percent,
    call_duration_ms=call_duration_ms,
    percent_of=percent_of,
    urlencode=lambda pairs: urlencode([(k, v) for k, v in pairs if v is not None and v != ""]),
)


def page(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status: int = 200,
    section: str = "",
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, principal=principal, section=section, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, principal: Principal | None, status: int, title: str, message: str) -> HTMLResponse:
    return page(request, "error.html", principal, status=status, title=title, message=message)


def redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body = resources.files(PACKAGE).joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


__all__ = ["NAV", "SECURITY_HEADERS", "error_page", "page", "redirect", "static"]
