"""Shared test setup: tests never touch the user's ~/.tokentrail, and telemetry guards re-raise."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CASSETTES = FIXTURES / "cassettes" / "otel-python-contrib"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENTRAIL_HOME", str(tmp_path / "tokentrail-home"))
    monkeypatch.setenv("TOKENTRAIL_TESTING", "1")
    yield
