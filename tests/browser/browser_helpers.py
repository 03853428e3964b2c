"""Shared by the browser tests (imported by module name; tests/ is not a package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ADMIN_KEY = "browser-admin-key-0123456789abcdef"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZES = {"wide": {"width": 1400, "height": 1000}, "narrow": {"width": 390, "height": 844}}
# `tokentrail serve`, with the CLI module imported explicitly (as the server tests do)
_SERVE = (
    "import sys; import tokentrail.cli.serve; from tokentrail.cli.app import app; sys.argv[0] = 'tokentrail'; app()"
)


def chromium_path() -> str:
    return os.environ.get("TOKENTRAIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401 - only whether it imports
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    path = chromium_path()
    if not Path(path).is_file():
        return f"Chromium is not installed at {path} (apt-get install -y chromium)"
    return None


def require_browser() -> None:
    problem = browser_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: the browser tests must run)")
        pytest.skip(problem)


@dataclass
class Served:
    url: str
    login_url: str  # as printed by `tokentrail serve`
    db_url: str
    process: subprocess.Popen[str]
    output: list[str]
