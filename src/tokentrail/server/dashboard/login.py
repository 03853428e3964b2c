"""Login and logout: an API key typed into the login page, or the one-time login URL that
`tokentrail serve` prints (`/?token=...`). Both end in an HttpOnly, SameSite=Lax cookie
naming a server-side session; the API itself keeps using Bearer keys."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tokentrail.server.api.deps import database
from tokentrail.server.auth import Principal
from tokentrail.server.dashboard import sessions
from tokentrail.server.dashboard.render import page, redirect
from tokentrail.server.db.engine import Database

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 16 * 1024


def current_principal(request: Request) -> Principal | None:
    return sessions.session_principal(database(request), request.cookies.get(sessions.COOKIE_NAME))


def safe_next(target: str | None) -> str:
    """Only a path on this server (never `//host` or a scheme), so login cannot redirect away."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def to_login(request: Request) -> Response:
    """Where a page sends a visitor without a session (back to the page after logging in)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/login" + (f"?{urlencode({'next': target})}" if target != "/" else ""))


def _with_cookie(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        max_age=int(sessions.SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _login_page(request: Request, *, status: int = 200, error: str | None = None, target: str = "/") -> HTMLResponse:
    return page(request, "login.html", None, status=status, error=error, next_path=target, title="Log in")


def _same_origin(request: Request) -> bool:
    """A form post must come from a page of this server (SameSite already keeps the cookie
    off cross-site posts; this also stops login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host")


async def _form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def redeem(request: Request, token: str) -> Response:
    """`/?token=...`: trade a one-time login token for a session, then drop the token from
    the address bar."""
    opened = sessions.redeem_login_token(database(request), token)
    if opened is None:
        return _login_page(
            request,
            status=401,
            error="This login link was already used or has expired. Log in with an API key, "
            "or restart `tokentrail serve` for a new link.",
        )
    return _with_cookie(request, redirect("/"), opened)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if current_principal(request) is not None:
        return redirect(safe_next(next))
    return _login_page(request, target=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request, db: Annotated[Database, Depends(database)]) -> Response:
    if not _same_origin(request):
        return _login_page(request, status=403, error="This form must be sent from this server's own page.")
    form = await _form(request)
    if form is None:
        return _login_page(request, status=413, error="The form is too large.")
    target = safe_next(form.get("next"))
    key = form.get("api_key", "").strip()
    if not key:
        return _login_page(request, status=400, error="Enter an API key.", target=target)
    opened = await run_in_threadpool(sessions.login_with_key, db, key)
    if opened is None:
        return _login_page(request, status=401, error="Unknown or revoked API key.", target=target)
    token, _principal = opened
    return _with_cookie(request, redirect(target), token)


@router.post("/logout")
async def logout(request: Request, db: Annotated[Database, Depends(database)]) -> Response:
    if not _same_origin(request):
        return _login_page(request, status=403, error="This form must be sent from this server's own page.")
    await run_in_threadpool(sessions.end_session, db, request.cookies.get(sessions.COOKIE_NAME))
    response = redirect("/login")
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response


__all__ = ["current_principal", "redeem", "router", "safe_next", "to_login"]
