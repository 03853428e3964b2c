"""Alerts end to end with a real webhook receiver on 127.0.0.1 (stdlib http.server in a
thread), on SQLite and PostgreSQL: each budget threshold is delivered exactly once — also
after re-ingest, repeated passes and concurrent passes of several evaluators — rules on
spend, tokens, error rate and p95 latency, retries with backoff, and ingest never waiting
for a webhook."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, T0, make_call, post_calls

from tokentrail.core.columns import to_micros
from tokentrail.server import create_app, store_calls
from tokentrail.server.alerts import periods
from tokentrail.server.alerts.service import AlertService, AlertSettings
from tokentrail.server.alerts.specs import parse_budget, parse_rule
from tokentrail.server.db import budgets as budget_store
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database

NOW = T0 + timedelta(hours=1)  # 2025-10-15 11:00 UTC


class Receiver:
    """A webhook endpoint: records every POST; answers 500 to the first `fail_first` ones
    (or to all with `always_fail`) and can be slow."""

    def __init__(self, *, fail_first: int = 0, always_fail: bool = False, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.delay = delay
        self.posts: list[tuple[int, dict[str, Any]]] = []  # (status answered, body)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    failing = receiver.always_fail or len(receiver.posts) < receiver.fail_first
                    status = 500 if failing else 200
                    receiver.posts.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for status, body in self.posts if status == 200]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.delivered) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.delivered

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def frozen() -> Iterator[None]:
    previous = periods.set_clock(lambda: NOW)
    yield
    periods.set_clock(previous)


def quick_alerts(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    env = {"INTERVAL": "0", "DEBOUNCE": "0.05", "BACKOFF": "0.05", **values}
    for name, value in env.items():
        monkeypatch.setenv(f"TOKENTRAIL_ALERT_{name}", value)


@pytest.fixture
def api(settings, frozen, monkeypatch) -> Iterator[TestClient]:
    quick_alerts(monkeypatch)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def settle(seconds: float = 0.6) -> None:
    """Leave the evaluator and sender time to act on anything (they must not send more)."""
    time.sleep(seconds)


def test_each_budget_threshold_is_delivered_once(api, receiver, caplog):
    caplog.set_level(logging.INFO, logger="tokentrail.alerts")
    budget = api.post(
        "/v1/budgets",
        json={
            "name": "team",
            "scope": {"project": "alpha"},
            "period": "month",
            "limit_usd": "0.01",
            "alert_at": [0.5, 0.8, 1.0],
            "webhook_url": receiver.url,
        },
        headers=ADMIN,
    ).json()
    calls = [make_call(at=T0 + timedelta(minutes=i)) for i in range(4)]
    per_call = calls[0].cost_metrics.total_cost  # gpt-4o: $0.0035 per call
    post_calls(api, calls[:1])  # 35%: nothing
    settle(0.3)
    assert receiver.delivered == []
    post_calls(api, calls[1:2])  # 70%: 50% crossed
    assert [a["threshold"] for a in receiver.wait_for(1)] == [0.5]
    post_calls(api, calls[2:3])  # 105%: 80% and 100% crossed in one step
    got = receiver.wait_for(3)
    assert sorted(a["threshold"] for a in got) == [0.5, 0.8, 1.0]

    # nothing is sent twice: duplicates, more spend, passes run by hand, deliveries retried
    assert post_calls(api, calls[:3]) == {"accepted": 0, "duplicates": 3}
    post_calls(api, calls[3:])
    service = api.app.state.alerts
    for _ in range(3):
        assert service.evaluate_now() == []
        service.deliver_now()
    settle()
    assert len(receiver.posts) == 3

    first = next(a for a in got if a["threshold"] == 0.5)
    assert first["kind"] == "budget" and first["name"] == "team" and first["budget_id"] == budget["id"]
    assert first["scope"] == {"project": "alpha"} and first["metric"] == "spend" and first["period"] == "month"
    assert first["limit_usd"] == "0.01" and Decimal(first["threshold_usd"]) == Decimal("0.005")
    assert Decimal(first["observed"]) == 2 * per_call
    assert (first["period_start"], first["period_end"]) == ("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z")
    assert first["fired_at"] == "2025-10-15T11:00:00Z"
    assert first["dedupe_key"].startswith(f"budget:{budget['id']}.") and isinstance(first["alert_id"], int)
    last = next(a for a in got if a["threshold"] == 1.0)
    assert Decimal(last["observed"]) == 3 * per_call

    history = api.get("/v1/alerts", headers=ADMIN).json()["alerts"]
    assert len(history) == 3
    assert {(a["status"], a["attempts"], a["last_error"]) for a in history} == {("delivered", 1, None)}
    assert all(a["delivered_at"] for a in history)
    logged = [r.getMessage() for r in caplog.records if "budget 'team' reached" in r.getMessage()]
    assert len(logged) == 3 and any("reached 80%" in m for m in logged)


def test_concurrent_passes_of_several_instances_send_once(db_url, receiver, frozen):
    """Four evaluators (as four server instances on one database) evaluate the same crossings
    at the same moment, then all deliver: each alert is claimed and POSTed once."""
    setup = Database(db_url)
    migrate.upgrade(setup.engine)
    calls = [make_call(at=NOW + timedelta(minutes=i), user_id="u1") for i in range(3)]
    with setup.write() as conn:
        store_calls(conn, calls)
        budget_store.create_budget(
            conn,
            parse_budget(
                {"name": "b", "period": "day", "limit_usd": "0.01", "alert_at": [0.5, 1], "webhook_url": receiver.url}
            ),
            to_micros(NOW),
        )
        budget_store.create_rule(
            conn,
            parse_rule(
                {"name": "r", "metric": "tokens", "threshold": 3000, "window": "1h", "webhook_url": receiver.url}
            ),
            to_micros(NOW),
        )
    setup.dispose()
    instances = [AlertService(Database(db_url), AlertSettings(interval=0)) for _ in range(4)]
    barrier = threading.Barrier(len(instances))
    claimed: list[list[int]] = [[] for _ in instances]

    def run(i: int) -> None:
        barrier.wait()
        claimed[i] = instances[i].evaluate_now()
        barrier.wait()
        instances[i].deliver_now()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        everything = sorted(alert_id for ids in claimed for alert_id in ids)
        assert len(everything) == len(set(everything)) == 3  # 50%, 100% and the rule
        bodies = receiver.wait_for(3)
        settle(0.3)
        assert len(receiver.posts) == 3
        assert sorted(b["alert_id"] for b in bodies) == everything
        assert sorted((b["kind"], b["name"]) for b in bodies) == [("budget", "b"), ("budget", "b"), ("rule", "r")]
    finally:
        for service in instances:
            service.db.dispose()


def test_failed_deliveries_are_retried_with_backoff(settings, frozen, monkeypatch):
    hook = Receiver(fail_first=2)
    quick_alerts(monkeypatch)
    try:
        with TestClient(create_app(settings)) as api:
            api.post(
                "/v1/budgets",
                json={"name": "b", "period": "month", "limit_usd": "0.001", "webhook_url": hook.url},
                headers=ADMIN,
            )
            post_calls(api, [make_call(at=T0)])
            delivered = hook.wait_for(1)
            assert [status for status, _ in hook.posts] == [500, 500, 200]
            assert len({body["dedupe_key"] for _, body in hook.posts}) == 1  # the same alert each time
            (alert,) = api.get("/v1/alerts", headers=ADMIN).json()["alerts"]
            assert (alert["status"], alert["attempts"]) == ("delivered", 3)
            assert delivered[0]["alert_id"] == alert["id"]
    finally:
        hook.close()


def test_delivery_gives_up_after_max_attempts(settings, frozen, monkeypatch):
    hook = Receiver(always_fail=True)
    quick_alerts(monkeypatch, MAX_ATTEMPTS="2")
    try:
        with TestClient(create_app(settings)) as api:
            api.post(
                "/v1/budgets",
                json={"name": "b", "period": "month", "limit_usd": "0.001", "webhook_url": hook.url},
                headers=ADMIN,
            )
            post_calls(api, [make_call(at=T0)])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                (alert,) = api.get("/v1/alerts", headers=ADMIN).json()["alerts"] or [{"status": None}]
                if alert["status"] == "failed":
                    break
                time.sleep(0.05)
            assert (alert["status"], alert["attempts"]) == ("failed", 2)
            assert alert["last_error"].startswith("HTTP 500")
            settle(0.3)
            assert len(hook.posts) == 2
            assert api.get("/v1/alerts", params={"status": "failed"}, headers=ADMIN).json()["alerts"] == [alert]
    finally:
        hook.close()


def test_rules_on_spend_tokens_error_rate_and_p95(api, receiver):
    def rule(name: str, metric: str, threshold: Any, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "metric": metric, "threshold": threshold, "window": "1h", "webhook_url": receiver.url}
        response = api.post("/v1/alert-rules", json={**body, **extra}, headers=ADMIN)
        assert response.status_code == 201, response.text
        return response.json()

    feature = {"feature": "search"}
    calls = [
        make_call(at=NOW + timedelta(minutes=1), ms=100, feature="search"),
        make_call(at=NOW + timedelta(minutes=2), ms=200, feature="search", input_tokens=5000),
        make_call(at=NOW + timedelta(minutes=3), ms=500, feature="search", error=True),
        make_call(at=NOW + timedelta(minutes=4), ms=900, feature="search", error=True, priced=False),
        make_call(at=NOW + timedelta(minutes=5), ms=5000, feature="other", error=True),  # out of scope
        make_call(at=NOW - timedelta(minutes=5), ms=5000, feature="search", error=True),  # the hour before
    ]
    in_scope = [c for c in calls if c.attribution.feature == "search" and c.started_at >= NOW]
    spend = sum(c.cost_metrics.total_cost for c in in_scope if c.cost_metrics is not None)
    tokens = sum(c.token_usage.input_tokens + c.token_usage.output_tokens for c in in_scope)
    rule("spend", "spend", str(spend), scope=feature)  # reached exactly
    rule("tokens", "tokens", tokens, scope=feature)
    rule("errors", "error_rate", 0.5, scope=feature, min_calls=4)
    rule("slow", "p95_latency_ms", 400, scope=feature)
    rule("quiet", "spend", str(spend + Decimal("0.000001")), scope=feature)  # not reached
    rule("few calls", "error_rate", 0.1, scope=feature, min_calls=5)  # too few calls to judge
    post_calls(api, calls)
    got = receiver.wait_for(4)
    settle(0.3)
    by_name = {a["name"]: a for a in got}
    assert sorted(by_name) == ["errors", "slow", "spend", "tokens"] and len(receiver.posts) == 4
    assert Decimal(by_name["spend"]["observed"]) == spend and by_name["spend"]["threshold"] == str(spend)
    assert by_name["tokens"]["observed"] == tokens
    assert by_name["errors"]["observed"] == 0.5 and by_name["errors"]["calls"] == 4
    usage = api.get(
        "/v1/usage",
        params={"feature": "search", "since": "2025-10-15T11:00:00Z", "until": "2025-10-15T12:00:00Z"},
        headers=ADMIN,
    ).json()["rows"][0]
    assert by_name["slow"]["observed"] == usage["p95_ms"] >= 400
    assert all(
        (a["period_start"], a["period_end"], a["window"], a["scope"])
        == ("2025-10-15T11:00:00Z", "2025-10-15T12:00:00Z", "1h", feature)
        for a in got
    )


def test_ingest_never_waits_for_a_webhook(settings, frozen, monkeypatch):
    hook = Receiver(delay=2.0)
    quick_alerts(monkeypatch)
    try:
        with TestClient(create_app(settings)) as api:
            api.post(
                "/v1/budgets",
                json={"name": "b", "period": "month", "limit_usd": "0.001", "webhook_url": hook.url},
                headers=ADMIN,
            )
            post_calls(api, [make_call(at=T0)])
            time.sleep(0.3)  # the alert is being delivered now, to a receiver that takes 2 s
            started = time.monotonic()
            for i in range(5):
                post_calls(api, [make_call(at=T0 + timedelta(minutes=i + 1))])
            assert time.monotonic() - started < 1.5
            assert len(hook.wait_for(1)) == 1
    finally:
        hook.close()
