"""Browser tests: a real Chromium (driven by Playwright, launched from the system's binary —
never a downloaded one) against a real `tokentrail serve` child process.

Without Chromium or Playwright these tests skip with the reason; with CI=true they fail
instead, so CI cannot pass without having run them. Screenshots are written to
`test-artifacts/screenshots/` (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser_helpers import _SERVE, ADMIN_KEY, CHROMIUM_ARGS, Served, chromium_path, require_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`tokentrail serve` on a free port over a temporary SQLite file, with its printed
    one-time login URL."""
    require_browser()
    home = tmp_path_factory.mktemp("serve")
    port = _free_port()
    db_url = f"sqlite:///{home / 'dashboard.db'}"
    env = {**os.environ, "TOKENTRAIL_ADMIN_KEY": ADMIN_KEY, "TOKENTRAIL_HOME": str(home)}
    args = [sys.executable, "-c", _SERVE, "serve", "--db", db_url, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader: threading.Thread | None = None
    try:
        login_url = None
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while login_url is None:
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("tokentrail serve printed no login URL:\n" + "".join(output))
            output.append(line)
            if line.startswith("Dashboard: "):
                login_url = line.split()[1]
        url = f"http://127.0.0.1:{port}"
        while True:  # the URL is printed before uvicorn listens
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("tokentrail serve did not listen:\n" + "".join(output)) from None
                time.sleep(0.05)
        # keep reading what the server prints, so a full pipe never blocks it
        reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
        reader.start()
        yield Served(url=url, login_url=login_url, db_url=db_url, process=process, output=output)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if reader is not None:
            reader.join(5)  # the pipe ends with the process
        if process.stdout is not None:
            process.stdout.close()
