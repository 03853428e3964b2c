"""Budget periods and rule windows in UTC with a frozen clock: the bounds at day, week (ISO,
Monday) and month boundaries, spend starting from zero in a new period, and alerts deduped
per period (the same threshold fires again in the next one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, make_call, post_calls

from tokentrail.core import ValidationError
from tokentrail.server import create_app
from tokentrail.server.alerts import periods
from tokentrail.server.alerts.periods import calendar_bounds, parse_window

EPS = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("day", utc(2025, 10, 15, 10), utc(2025, 10, 15), utc(2025, 10, 16)),
        ("day", utc(2025, 10, 15), utc(2025, 10, 15), utc(2025, 10, 16)),
        ("day", utc(2025, 10, 15) - EPS, utc(2025, 10, 14), utc(2025, 10, 15)),
        ("day", utc(2024, 2, 29, 23, 59), utc(2024, 2, 29), utc(2024, 3, 1)),
        ("week", utc(2025, 10, 15, 10), utc(2025, 10, 13), utc(2025, 10, 20)),  # Wednesday
        ("week", utc(2025, 10, 13), utc(2025, 10, 13), utc(2025, 10, 20)),  # Monday 00:00
        ("week", utc(2025, 10, 13) - EPS, utc(2025, 10, 6), utc(2025, 10, 13)),  # Sunday night
        ("week", utc(2026, 1, 1, 12), utc(2025, 12, 29), utc(2026, 1, 5)),  # across the year
        ("month", utc(2025, 10, 15, 10), utc(2025, 10, 1), utc(2025, 11, 1)),
        ("month", utc(2025, 11, 1) - EPS, utc(2025, 10, 1), utc(2025, 11, 1)),
        ("month", utc(2025, 12, 31, 23, 59, 59), utc(2025, 12, 1), utc(2026, 1, 1)),
        ("month", utc(2024, 2, 10), utc(2024, 2, 1), utc(2024, 3, 1)),
        # a local time is read as the UTC instant it is: 01:30 at +02:00 is 23:30 UTC the day before
        (
            "day",
            datetime(2025, 10, 16, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            utc(2025, 10, 15),
            utc(2025, 10, 16),
        ),
    ],
)
def test_calendar_periods(period, at, start, end):
    assert calendar_bounds(period, at) == (start, end)


@pytest.mark.parametrize(
    ("text", "at", "start", "end"),
    [
        ("1h", utc(2025, 10, 15, 10, 59, 59), utc(2025, 10, 15, 10), utc(2025, 10, 15, 11)),
        ("15m", utc(2025, 10, 15, 10, 44), utc(2025, 10, 15, 10, 30), utc(2025, 10, 15, 10, 45)),
        ("6h", utc(2025, 10, 15, 13), utc(2025, 10, 15, 12), utc(2025, 10, 15, 18)),
        ("24h", utc(2025, 10, 15, 13), utc(2025, 10, 15), utc(2025, 10, 16)),
        ("1d", utc(2025, 10, 15, 13), utc(2025, 10, 15), utc(2025, 10, 16)),
        ("1w", utc(2025, 10, 19, 23), utc(2025, 10, 13), utc(2025, 10, 20)),
        ("month", utc(2025, 2, 3), utc(2025, 2, 1), utc(2025, 3, 1)),
    ],
)
def test_rule_windows_tile_utc(text, at, start, end):
    assert parse_window("window", text).bounds(at) == (start, end)


@pytest.mark.parametrize("text", ["7m", "5h", "2d", "0h", "1y", "", "an hour", 3600])
def test_windows_that_do_not_tile_are_refused(text):
    with pytest.raises(ValidationError) as caught:
        parse_window("window", text)
    assert caught.value.field == "window"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(utc(2025, 10, 15, 10))
    previous = periods.set_clock(frozen)
    yield frozen
    periods.set_clock(previous)


@pytest.fixture
def api(settings, clock, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TOKENTRAIL_ALERT_INTERVAL", "0")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def spent(api: TestClient, budget_id: int) -> tuple[Decimal, str, str]:
    body = api.get(f"/v1/budgets/{budget_id}", headers=ADMIN).json()
    return Decimal(body["spent_usd"]), body["period_start"], body["period_end"]


@pytest.mark.parametrize(
    ("period", "last_instant", "next_start"),
    [
        ("day", utc(2025, 10, 16) - EPS, "2025-10-16T00:00:00Z"),
        ("week", utc(2025, 10, 20) - EPS, "2025-10-20T00:00:00Z"),  # Sunday 23:59:59.999999 -> Monday
        ("month", utc(2025, 11, 1) - EPS, "2025-11-01T00:00:00Z"),
    ],
)
def test_spend_resets_at_the_period_boundary(api, clock, period, last_instant, next_start):
    budget_id = api.post(
        "/v1/budgets", json={"name": period, "period": period, "limit_usd": "100"}, headers=ADMIN
    ).json()["id"]
    before = [make_call(at=utc(2025, 10, 15, 9)), make_call(at=last_instant - timedelta(seconds=1))]
    post_calls(api, before)
    clock.at = last_instant
    total, start, end = spent(api, budget_id)
    assert total == sum(c.cost_metrics.total_cost for c in before)
    assert end == next_start

    clock.at = last_instant + EPS  # the first instant of the next period
    after = make_call(at=clock.at + timedelta(seconds=30), input_tokens=4321)
    total, start, _ = spent(api, budget_id)
    assert (total, start) == (Decimal(0), next_start)
    post_calls(api, [after])
    assert spent(api, budget_id)[0] == after.cost_metrics.total_cost
    assert spent(api, budget_id)[1] == next_start


def test_one_alert_per_threshold_per_period(api, clock):
    service = api.app.state.alerts
    budget = api.post(
        "/v1/budgets",
        json={"name": "daily", "period": "day", "limit_usd": "0.01", "alert_at": [0.5, 1]},
        headers=ADMIN,
    ).json()
    one = make_call(at=utc(2025, 10, 15, 9))  # gpt-4o, 1000 in + 100 out: $0.0035
    assert one.cost_metrics.total_cost == Decimal("0.0035")
    post_calls(api, [one, make_call(at=utc(2025, 10, 15, 9, 5))])  # $0.007: 50% crossed, not 100%
    service.evaluate_now()
    service.evaluate_now()  # again: nothing new

    clock.at = utc(2025, 10, 16, 8)  # the next day: the same threshold may fire again
    service.evaluate_now()  # nothing spent today yet
    post_calls(api, [make_call(at=utc(2025, 10, 16, 7, m)) for m in range(3)])  # $0.0105: 50% and 100%
    service.evaluate_now()
    service.evaluate_now()

    alerts = api.get("/v1/alerts", params={"budget_id": budget["id"]}, headers=ADMIN).json()["alerts"]
    fired = sorted((a["period_start"], a["threshold"]) for a in alerts)
    assert fired == [
        ("2025-10-15T00:00:00Z", 0.5),
        ("2025-10-16T00:00:00Z", 0.5),
        ("2025-10-16T00:00:00Z", 1.0),
    ]
    day_two = [a for a in alerts if a["period_start"] == "2025-10-16T00:00:00Z"]
    assert {a["observed"] for a in day_two} == {"0.0105"}
    assert all(a["status"] == "logged" and a["fired_at"].startswith("2025-10-16T08") for a in day_two)


def test_rule_windows_alert_once_per_window(api, clock):
    service = api.app.state.alerts
    rule = api.post(
        "/v1/alert-rules",
        json={"name": "tokens per hour", "metric": "tokens", "threshold": 2000, "window": "1h"},
        headers=ADMIN,
    ).json()
    post_calls(api, [make_call(at=utc(2025, 10, 15, 10, m)) for m in (1, 2)])  # 2 * 1100 tokens
    service.evaluate_now()
    clock.at = utc(2025, 10, 15, 10, 59)
    post_calls(api, [make_call(at=utc(2025, 10, 15, 10, 50))])
    service.evaluate_now()  # still the 10:00 window: already alerted
    clock.at = utc(2025, 10, 15, 11, 0)
    service.evaluate_now()  # the 11:00 window is empty
    post_calls(api, [make_call(at=utc(2025, 10, 15, 11, m), input_tokens=1500) for m in (0, 1)])
    service.evaluate_now()
    alerts = api.get("/v1/alerts", params={"rule_id": rule["id"]}, headers=ADMIN).json()["alerts"]
    assert sorted((a["period_start"], a["observed"]) for a in alerts) == [
        ("2025-10-15T10:00:00Z", 2200),
        ("2025-10-15T11:00:00Z", 3200),
    ]
