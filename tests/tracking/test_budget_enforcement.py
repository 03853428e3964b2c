"""Budget enforcement in the SDK against a real collector (uvicorn on 127.0.0.1, SQLite):
hard budgets refuse calls before the provider is called, with the guards letting
`BudgetExceeded` through; scopes; spend from other processes arriving with a sync; soft
warnings; many threads overshooting by at most their calls in flight; period rollover with a
frozen clock; and an unreachable collector failing open."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
import uvicorn

import tokentrail
from tokentrail.core import TokentrailError, TokenUsage, ValidationError
from tokentrail.core.errors import BudgetExceeded
from tokentrail.instrument import instrument, uninstrument
from tokentrail.mockprovider import MockProvider
from tokentrail.server import ServerSettings, create_app
from tokentrail.server import auth as server_auth
from tokentrail.server.alerts import periods
from tokentrail.server.settings import sqlite_url
from tokentrail.tracking import budgets, guard, runtime
from tokentrail.tracking.budgets import BudgetWarning
from tokentrail.tracking.clock import FrozenClock, set_clock

ADMIN_KEY = "admin-test-key-0123456789abcdef"
COST = tokentrail.calculate_cost("openai", "gpt-4o", TokenUsage.build(input_tokens=1000, output_tokens=100)).total_cost


class Collector:
    """`create_app` served by uvicorn in a thread, plus a small HTTP client."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(ServerSettings.load(database_url=database_url, admin_key=ADMIN_KEY))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        assert 200 <= response.status < 300, (response.status, data)
        return json.loads(data) if data else None

    def key(self, project: str) -> str:
        with self.app.state.db.write() as conn:
            return server_auth.create_key(conn, project=project)[0]

    def budget(self, key: str = ADMIN_KEY, **body: Any) -> dict[str, Any]:
        return self.request("POST", "/v1/budgets", {"period": "month", **body}, key=key)

    def spent(self, budget_id: int) -> Decimal:
        return Decimal(self.request("GET", f"/v1/budgets/{budget_id}")["spent_usd"])

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def collector(tmp_path, monkeypatch) -> Iterator[Collector]:
    monkeypatch.setenv("TOKENTRAIL_ALERT_INTERVAL", "0")
    server = Collector(sqlite_url(tmp_path / "collector.db"))
    yield server
    runtime.reset()  # the SDK stops sending before the server goes
    server.close()


def enforce(collector: Collector, key: str, tmp_path, **extra: Any) -> budgets.Enforcer:
    options: dict[str, Any] = {"budget_sync_interval": 0.1, "flush_interval": 0.05, **extra}
    tokentrail.configure(
        sinks=["collector"],
        collector_url=collector.url,
        api_key=key,
        enforce_budgets=True,
        spool_dir=str(tmp_path / "spool"),
        **options,
    )
    with tokentrail.track_llm_call(provider="openai", model="warm-up"):  # starts the enforcer
        pass
    enforcer = budgets.current_enforcer()
    assert enforcer is not None and enforcer.syncs >= 1
    return enforcer


def wait_for_syncs(enforcer: budgets.Enforcer, count: int = 2) -> None:
    target = enforcer.syncs + count
    deadline = time.monotonic() + 10
    while enforcer.syncs < target:
        assert time.monotonic() < deadline, "no sync"
        time.sleep(0.01)


class Provider:
    """Stands in for a provider SDK call: counts how often it really ran."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def call(self, model: str = "gpt-4o", pause: float = 0.0, **attrs: Any) -> None:
        with tokentrail.attribution(**attrs), tokentrail.track_llm_call(provider="openai", model=model) as tracker:
            with self.lock:
                self.calls += 1
            if pause:
                time.sleep(pause)
            tracker.set_tokens(input_tokens=1000, output_tokens=100)


@pytest.mark.parametrize("production", [False, True], ids=["testing", "production"])
def test_an_exhausted_hard_budget_refuses_calls_before_they_start(collector, tmp_path, production):
    guard.set_reraise(False if production else None)  # production: the guards swallow tracking errors
    key = collector.key("alpha")
    budget = collector.budget(key, name="hard", limit_usd=str(COST * Decimal("2.5")), hard=True)
    enforce(collector, key, tmp_path)
    provider = Provider()
    for _ in range(3):  # 0, 1x, 2x the cost spent before each: all under 2.5x
        provider.call()
    with pytest.raises(BudgetExceeded) as refused:
        provider.call()
    assert provider.calls == 3  # the refused call never reached the provider

    @tokentrail.llm_instrumented(provider="openai", model="gpt-4o")
    def decorated() -> None:
        provider.calls += 1

    async def in_async_block() -> None:
        async with tokentrail.track_llm_call(provider="openai", model="gpt-4o"):
            provider.calls += 1

    with pytest.raises(BudgetExceeded):
        decorated()
    with pytest.raises(BudgetExceeded):
        asyncio.run(in_async_block())
    assert provider.calls == 3
    error = refused.value
    assert (error.budget, error.limit, error.spent) == ("hard", Decimal(budget["limit_usd"]), 3 * COST)
    assert error.budget_id == budget["id"] and error.period == "month"
    assert isinstance(error, TokentrailError)
    assert "is exhausted" in str(error)
    assert runtime.flush(10)
    assert collector.spent(budget["id"]) == 3 * COST  # the refused call left no record


@pytest.mark.parametrize("production", [False, True], ids=["testing", "production"])
def test_an_instrumented_sdk_call_is_refused_before_the_request(collector, tmp_path, production):
    guard.set_reraise(False if production else None)
    key = collector.key("alpha")
    collector.budget(key, name="mini", limit_usd="0.000001", hard=True, scope={"model": "gpt-4o-mini"})
    enforce(collector, key, tmp_path, openai_compatible_provider="openai")  # the mock speaks OpenAI's API
    instrument("openai")
    try:
        with (
            MockProvider(port=0) as mock,
            openai.OpenAI(base_url=mock.openai_base_url, api_key="sk-test", max_retries=0) as client,
        ):
            messages = [{"role": "user", "content": "hi"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            assert len(mock.calls) == 1
            with pytest.raises(BudgetExceeded):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            with pytest.raises(BudgetExceeded):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            assert len(mock.calls) == 1  # neither request was sent
            client.chat.completions.create(model="gpt-4o", messages=messages)  # another model: not in scope
            assert len(mock.calls) == 2
    finally:
        uninstrument()


def test_scopes_decide_which_calls_are_refused(collector, tmp_path):
    key = collector.key("alpha")
    collector.budget(key, name="u1", limit_usd=str(COST), hard=True, scope={"user_id": "u1", "feature": "chat"})
    collector.budget(collector.key("beta"), name="beta", limit_usd="0.000001", hard=True)  # another project
    enforce(collector, key, tmp_path)
    provider = Provider()
    provider.call(user_id="u1", feature="chat")  # spends the whole budget
    with pytest.raises(BudgetExceeded):
        provider.call(user_id="u1", feature="chat")
    with pytest.raises(BudgetExceeded):
        provider.call(model="gpt-4o-mini", user_id="u1", feature="chat", session_id="s9")  # any model
    provider.call(user_id="u2", feature="chat")
    provider.call(user_id="u1", feature="search")
    provider.call(user_id="u1")
    assert provider.calls == 4


def test_spend_of_other_processes_arrives_with_the_next_sync(collector, tmp_path):
    key = collector.key("alpha")
    budget = collector.budget(key, name="shared", limit_usd=str(COST * 3), hard=True)
    enforcer = enforce(collector, key, tmp_path)
    provider = Provider()
    provider.call()
    # another process spends 2x more through the collector directly
    other = [
        {
            "id": f"0199f0f0-0000-7000-8000-00000000000{i}",
            "operation": "chat",
            "provider": "openai",
            "request_model": "gpt-4o",
            "status": "ok",
            "started_at": datetime.now(UTC).isoformat(),
            "token_usage": {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
            "cost_metrics": {"total_cost": str(COST), "currency": "USD", "pricing_status": "priced"},
        }
        for i in range(2)
    ]
    assert collector.request("POST", "/v1/calls", {"calls": other}, key=key) == {"accepted": 2, "duplicates": 0}
    wait_for_syncs(enforcer)
    with pytest.raises(BudgetExceeded) as refused:
        provider.call()
    assert refused.value.spent == 3 * COST == collector.spent(budget["id"])
    assert enforcer.pending == 0  # everything counted here is known to be stored: counted once


def test_soft_budgets_warn_once_per_threshold_and_never_block(collector, tmp_path, caplog):
    key = collector.key("alpha")
    collector.budget(key, name="soft", limit_usd=str(COST * 4), alert_at=[0.5, 1])
    warnings: list[BudgetWarning] = []
    enforcer = enforce(collector, key, tmp_path, on_budget_warning=warnings.append)
    provider = Provider()
    for _ in range(6):
        provider.call()
        wait_for_syncs(enforcer, 1)  # syncs in between must not repeat a warning
    assert provider.calls == 6  # a soft budget never blocks
    assert [(w.budget, w.threshold, w.spent) for w in warnings] == [
        ("soft", Decimal("0.5"), 2 * COST),
        ("soft", Decimal("1"), 4 * COST),
    ]
    assert warnings[0].limit == 4 * COST and warnings[0].period == "month" and not warnings[0].hard
    logged = [r.getMessage() for r in caplog.records if r.name == "tokentrail.budgets"]
    assert len(logged) == 2 and "budget 'soft' reached 50% of its month limit" in logged[0]


def test_many_threads_overshoot_by_at_most_their_calls_in_flight(collector, tmp_path):
    threads = 8
    limit = COST * 48
    key = collector.key("alpha")
    budget = collector.budget(key, name="burst", limit_usd=str(limit), hard=True)
    enforcer = enforce(collector, key, tmp_path, budget_sync_interval=0.05)  # syncs during the burst
    provider = Provider()
    syncs_before = enforcer.syncs
    refused = [0] * threads
    start = threading.Barrier(threads)

    def spend(i: int) -> None:
        start.wait()
        while True:
            try:
                provider.call(pause=0.04)
            except BudgetExceeded:
                refused[i] += 1
                return

    workers = [threading.Thread(target=spend, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert refused == [1] * threads
    assert runtime.flush(10)
    spent = collector.spent(budget["id"])
    assert spent == provider.calls * COST  # every admitted call was recorded once
    # the limit is reached by the ceil(limit / cost)-th call; at most the other threads' calls
    # were in flight then
    assert math.ceil(limit / COST) <= provider.calls <= math.ceil(limit / COST) + threads - 1
    assert spent - limit < threads * COST
    assert enforcer.syncs >= syncs_before + 3  # several syncs happened during the burst
    wait_for_syncs(enforcer)
    (state,) = enforcer.budgets
    assert state.spent == spent and enforcer.pending == 0


def test_a_new_period_frees_the_budget(collector, tmp_path):
    clock = FrozenClock(datetime(2025, 10, 15, 23, 59, 0, tzinfo=UTC))
    previous_sdk, previous_server = set_clock(clock), periods.set_clock(clock.now)
    try:
        key = collector.key("alpha")
        budget = collector.budget(key, name="daily", period="day", limit_usd=str(COST), hard=True)
        enforcer = enforce(collector, key, tmp_path)
        provider = Provider()
        provider.call()
        with pytest.raises(BudgetExceeded) as refused:
            provider.call()
        assert refused.value.period_end == datetime(2025, 10, 16, tzinfo=UTC)
        wait_for_syncs(enforcer)
        with pytest.raises(BudgetExceeded):
            provider.call()
        clock.advance(60)  # 2025-10-16 00:00:00: a new day, before any sync
        provider.call()
        wait_for_syncs(enforcer)  # the collector agrees: today's spend is the one call
        assert collector.spent(budget["id"]) == COST
        with pytest.raises(BudgetExceeded):
            provider.call()
        assert provider.calls == 2
    finally:
        set_clock(previous_sdk)
        periods.set_clock(previous_server)


def test_enforcement_needs_a_collector():
    with pytest.raises(ValidationError) as caught:
        tokentrail.configure(sinks=["memory"], enforce_budgets=True)
    assert caught.value.field == "collector_url"
    with pytest.raises(ValidationError) as caught:
        tokentrail.configure(sinks=["memory"], collector_url="http://127.0.0.1:9", budget_sync_interval=0)
    assert caught.value.field == "budget_sync_interval"


def test_an_unreachable_collector_fails_open(tmp_path):
    with socket_closed_port() as port:
        tokentrail.configure(
            sinks=["memory"],
            collector_url=f"http://127.0.0.1:{port}",
            enforce_budgets=True,
            budget_sync_interval=0.05,
            collector_timeout=0.5,
        )
        provider = Provider()
        provider.call()
        provider.call()
        enforcer = budgets.current_enforcer()
        assert enforcer is not None and enforcer.budgets == () and enforcer.sync_failures >= 1
        assert provider.calls == 2


class socket_closed_port:
    """A loopback port nothing listens on."""

    def __enter__(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None


def test_reconfiguring_stops_enforcement(collector, tmp_path):
    key = collector.key("alpha")
    collector.budget(key, name="none left", limit_usd="0.000001", hard=True)
    enforce(collector, key, tmp_path)
    provider = Provider()
    provider.call()
    with pytest.raises(BudgetExceeded):
        provider.call()
    tokentrail.configure(sinks=["memory"])
    provider.call()  # enforcement is off now
    assert budgets.current_enforcer() is None and provider.calls == 2
    assert runtime._taps == ()  # the record tap left with the enforcer


def test_calls_the_collector_already_stores_are_counted_once(collector, tmp_path):
    """Records that reach the collector by another route than this pipeline (here: posted by
    the test; in life, a log shipper or a spool drained later) leave the local count as soon
    as a sync finds them stored: the spend is never counted twice."""
    key = collector.key("alpha")
    budget = collector.budget(key, name="once", limit_usd=str(COST * 10), hard=True)
    tokentrail.configure(
        sinks=["memory"], collector_url=collector.url, api_key=key, enforce_budgets=True, budget_sync_interval=0.05
    )
    provider = Provider()
    with tokentrail.testing.capture() as made:
        for _ in range(3):
            provider.call()
    enforcer = budgets.current_enforcer()
    assert enforcer is not None and enforcer.pending == 3
    (state,) = enforcer.budgets
    assert state.spent == 3 * COST and state.server == 0
    body = {"calls": [call.to_dict() for call in made]}
    assert collector.request("POST", "/v1/calls", body, key=key) == {"accepted": 3, "duplicates": 0}
    wait_for_syncs(enforcer)
    (state,) = enforcer.budgets
    assert (state.server, state.local, enforcer.pending) == (3 * COST, 0, 0)
    assert collector.spent(budget["id"]) == 3 * COST
    provider.call()  # not posted: stays local
    wait_for_syncs(enforcer)
    (state,) = enforcer.budgets
    assert (state.server, state.local, enforcer.pending) == (3 * COST, COST, 1)
