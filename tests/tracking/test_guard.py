from __future__ import annotations

import logging

import pytest

from tokentrail.tracking import guard as guard_module
from tokentrail.tracking.guard import guard, guarded, internal_errors, reraise_enabled, set_reraise


def test_reraises_under_tests():
    assert reraise_enabled()  # conftest sets TOKENTRAIL_TESTING=1
    with pytest.raises(ZeroDivisionError), guard("unit"):
        1 / 0  # noqa: B018


def test_swallows_logs_and_counts_outside_tests(monkeypatch, caplog):
    monkeypatch.delenv("TOKENTRAIL_TESTING")
    assert not reraise_enabled()
    before = internal_errors()
    with caplog.at_level(logging.WARNING, logger="tokentrail"), guard("unit.swallow"):
        raise KeyError("hidden")
    assert internal_errors() == before + 1
    assert "unit.swallow" in caplog.text and "hidden" in caplog.text


def test_explicit_setting_wins_over_the_environment(monkeypatch):
    set_reraise(False)
    with guard("unit.forced"):
        raise ValueError("swallowed although TOKENTRAIL_TESTING=1")
    set_reraise(True)
    monkeypatch.delenv("TOKENTRAIL_TESTING")
    with pytest.raises(ValueError), guard("unit.forced"):
        raise ValueError("raised although not testing")
    set_reraise(None)
    assert not reraise_enabled()


def test_base_exceptions_always_pass():
    set_reraise(False)
    with pytest.raises(KeyboardInterrupt), guard("unit.base"):
        raise KeyboardInterrupt


def test_guarded_decorator_returns_default():
    set_reraise(False)

    @guarded("unit.decorated", default="fallback")
    def broken() -> str:
        raise RuntimeError("x")

    @guarded("unit.decorated", default="fallback")
    def fine() -> str:
        return "value"

    assert broken() == "fallback"
    assert fine() == "value"


def test_logging_is_rate_limited_per_site(caplog):
    set_reraise(False)
    site = "unit.flood"
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        for _ in range(100):
            with guard(site):
                raise RuntimeError("again")
    logged = [r for r in caplog.records if site in r.getMessage()]
    assert len(logged) == 7  # 1, 2, 4, 8, 16, 32, 64
    assert guard_module._per_site[site] == 100
