"""The web dashboard the collector serves at `/` (see docs/dashboard.md): server-rendered
HTML and SVG, no JavaScript, behind a login (an API key, or the one-time URL that
`tokentrail serve` prints). It reads aggregates from the rollups, like `GET /v1/usage`."""

from __future__ import annotations

from fastapi import APIRouter

from tokentrail.server.dashboard import budgets_page, login, pages
from tokentrail.server.dashboard.sessions import LOGIN_TOKEN_TTL, issue_login_token, login_url

router = APIRouter(include_in_schema=False)
router.include_router(login.router)
router.include_router(pages.router)
router.include_router(budgets_page.router)

__all__ = ["LOGIN_TOKEN_TTL", "issue_login_token", "login_url", "router"]
