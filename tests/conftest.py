"""Shared test setup: tests never touch the user's ~/.tokentrail, and telemetry guards re-raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

FIXTURES = Path(__file__).parent / "fixtures"
CASSETTES = FIXTURES / "cassettes" / "otel-python-contrib"

# The machine has two cores shared with other work: judge properties, not speed.
settings.register_profile("tokentrail", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tokentrail")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENTRAIL_HOME", str(tmp_path / "tokentrail-home"))
    monkeypatch.setenv("TOKENTRAIL_TESTING", "1")
    yield
