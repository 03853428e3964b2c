"""The dashboard in a real Chromium (issue 6, Done-when): log in through the login URL that
`tokentrail serve` printed, then check every page's numbers against the API for the same
period, page through and filter calls, open a call's detail, log in with a project key and
see only that project. Screenshots at 1400x1000 and 390x844 go to test-artifacts/screenshots.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from browser_helpers import ADMIN_KEY, SCREENSHOTS, SIZES, Served

from tokentrail.core import (
    Attribution,
    CallStatus,
    ErrorInfo,
    LLMCall,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
    TokenUsage,
)
from tokentrail.pricing import calculate_cost
from tokentrail.server import auth
from tokentrail.server.dashboard.format import usd
from tokentrail.server.db.engine import Database

pytestmark = pytest.mark.browser
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
GATHER = """els => els.map(e => {
  const row = e.closest('[data-key],[data-id]');
  const scope = e.parentElement.closest('[id]');
  return {metric: e.dataset.metric, value: e.dataset.value === undefined ? null : e.dataset.value,
          text: e.textContent.replace(/\\s+/g, ' ').trim(),
          key: row ? (row.hasAttribute('data-key') ? row.dataset.key : row.dataset.id) : null,
          scope: scope ? scope.id : null};
})"""


def make(now: datetime, rng: random.Random, i: int) -> LLMCall:
    provider, model = rng.choice(
        [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-sonnet-latest")]
    )
    priced = i % 23 != 7
    if not priced:
        model = "my-private-model"
    at = now - timedelta(minutes=rng.choice([rng.randint(5, 60 * 20), rng.randint(60, 60 * 24 * 100)]))
    input_tokens = rng.randint(100, 40_000)
    usage = TokenUsage.build(
        input_tokens=input_tokens,
        output_tokens=rng.randint(5, 3000),
        cache_read_tokens=rng.choice([None, input_tokens // 3]),
    )
    error = i % 11 == 3
    return LLMCall.new(
        started_at=at,
        completed_at=at + timedelta(milliseconds=rng.randint(80, 9000)),
        provider=provider,
        request_model=model,
        token_usage=usage,
        cost_metrics=calculate_cost(provider, model, usage, at=at) if priced else None,
        status=CallStatus.ERROR if error else CallStatus.OK,
        error=ErrorInfo(type="RateLimitError", message="slow down") if error else None,
        attribution=Attribution(
            project=rng.choice(["web", "web", "batch"]),
            user_id=rng.choice(["ann", "bob", "carol", "dave", None]),
            tenant_id=rng.choice(["acme", "globex", None]),
            feature=rng.choice(["chat", "search", "summarize"]),
        ),
    )


def rich_call(now: datetime) -> LLMCall:
    at = now - timedelta(minutes=42)
    usage = TokenUsage.build(input_tokens=12_345, output_tokens=678, cache_read_tokens=4096, reasoning_tokens=128)
    return LLMCall.new(
        started_at=at,
        completed_at=at + timedelta(milliseconds=2345),
        provider="openai",
        request_model="gpt-4o",
        provider_model="gpt-4o-2024-08-06",
        token_usage=usage,
        cost_metrics=calculate_cost("openai", "gpt-4o", usage, at=at),
        performance_metrics=PerformanceMetrics(total_duration_ms=2345.0, time_to_first_token_ms=312.0),
        request_parameters=RequestParameters(temperature=0.3, max_tokens=1024, seed=11, stream=True),
        response_metadata=ResponseMetadata(finish_reason="stop", request_id="req_rich_1", system_fingerprint="fp_x"),
        rate_limit_info=RateLimitInfo(requests_limit=10_000, requests_remaining=9_998, tokens_limit=2_000_000),
        attribution=Attribution(project="web", user_id="ann", tenant_id="acme", feature="chat"),
        metadata={"ticket": "T-1001"},
        response_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
        streaming=True,
    )


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers=ADMIN, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def data(served: Served, api: httpx.Client) -> dict[str, Any]:
    now = datetime.now(UTC)
    rng = random.Random(2025)
    calls = [make(now, rng, i) for i in range(90)] + [rich := rich_call(now)]
    answer = api.post("/v1/calls", json={"calls": [c.to_dict() for c in calls]})
    assert answer.status_code == 200 and answer.json()["accepted"] == len(calls), answer.text
    entry = {"name": "faithfulness", "source": "vendor", "vendor_name": "Ragas"}
    assert api.post("/v1/evaluations/catalog", json=entry).status_code in (200, 201)
    judge = {
        "provider": "openai",
        "provider_model": "gpt-4o-mini",
        "token_usage": {"input_tokens": 1500, "output_tokens": 120},
        "started_at": now.isoformat(),
    }
    result = {"evaluation": "faithfulness", "score": 0.91, "passed": True, "reason": "grounded", "llm_metadata": judge}
    assert api.post(f"/v1/calls/{rich.id}/evaluations", json=result).status_code == 201
    db = Database(served.db_url)
    try:
        with db.write() as conn:
            batch_key, _ = auth.create_key(conn, project="batch")
    finally:
        db.dispose()
    return {"calls": calls, "rich": rich, "batch_key": batch_key}


@pytest.fixture(scope="module")
def session(browser: Any, served: Served, data: dict[str, Any]) -> Iterator[Any]:
    """A browser logged in through the printed one-time URL (its cookies, for new pages)."""
    context = browser.new_context(viewport=SIZES["wide"], base_url=served.url)
    page = context.new_page()
    response = page.goto(served.login_url)
    assert response is not None and response.ok
    assert page.url == served.url + "/"  # the token is gone from the address bar
    assert page.get_attribute(".scope", "data-scope") == "admin"
    cookie = next(c for c in context.cookies() if c["name"] == "tokentrail_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    try:
        yield context
    finally:
        context.close()


def shoot(page: Any, name: str, size: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport = SIZES[size]
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport['width']}x{viewport['height']}.png"), full_page=True)


def metrics(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all("[data-metric]", GATHER)


def one(found: list[dict[str, Any]], scope: str, metric: str, key: str | None = None) -> dict[str, Any]:
    hits = [m for m in found if m["scope"] == scope and m["metric"] == metric and m["key"] == key]
    assert len(hits) == 1, (scope, metric, key, hits)
    return hits[0]


def table(found: list[dict[str, Any]], scope: str) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in found:
        if m["scope"] == scope and m["key"] is not None:
            out.setdefault(m["key"], {})[m["metric"]] = m
    return out


def money(element: dict[str, Any], expected: str) -> None:
    assert element["value"] == expected
    assert element["text"] == usd(expected)
    assert Decimal(element["text"].lstrip("$").replace(",", "")) == Decimal(expected)


def row_ids(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "rows => rows.map(r => r.dataset.id)")


def since_of(page: Any) -> str:
    return page.get_attribute("#since", "datetime")


def test_printed_login_url_is_single_use(browser, served, session):
    context = browser.new_context(viewport=SIZES["wide"])
    try:
        page = context.new_page()
        response = page.goto(served.login_url)
        assert response is not None and response.status == 401
        assert "already used or has expired" in page.inner_text("#login-error")
        assert not [c for c in context.cookies() if c["name"] == "tokentrail_session"]
    finally:
        context.close()


@pytest.mark.parametrize("period", ["24h", "7d", "30d", "90d"])
def test_overview_numbers_match_the_api(session, api, period):
    page = session.new_page()
    page.goto("/")
    page.click(f".periods a:text-is('{period}')")
    page.wait_for_url(f"**/?period={period}")
    since = since_of(page)
    found = metrics(page)
    total = api.get("/v1/usage", params={"since": since}).json()["rows"][0]
    money(one(found, "totals", "total_cost"), total["total_cost"])
    for name in ("calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens"):
        assert one(found, "totals", name)["value"] == str(total[name]), name
    assert one(found, "totals", "p95_ms")["value"] == str(total["p95_ms"])
    assert page.inner_text(".kpi .big[data-metric=calls]") == f"{total['calls']:,}"
    bucket = "hour" if period == "24h" else "day"
    series = {r[bucket]: r for r in api.get("/v1/usage", params={"since": since, "group_by": bucket}).json()["rows"]}
    shown = table(found, "spend-table")
    assert set(series) <= set(shown)
    for key, cells in shown.items():
        money(cells["total_cost"], series.get(key, {"total_cost": "0"})["total_cost"])
    bars = page.eval_on_selector_all("#spend-chart .bar", "bars => bars.map(b => [b.dataset.bucket, b.dataset.value])")
    assert {k: Decimal(v) for k, v in bars} == {k: Decimal(c["total_cost"]["value"]) for k, c in shown.items()}
    for dimension in ("model", "provider", "user_id", "feature"):
        rows = api.get("/v1/usage", params={"since": since, "group_by": dimension}).json()["rows"]
        expected = {("" if r[dimension] is None else r[dimension]): r for r in rows}
        cells = table(found, f"by-{dimension}")
        assert set(cells) == set(expected), dimension
        for key, row in cells.items():
            assert row["calls"]["value"] == str(expected[key]["calls"])
            assert row["total_cost"]["value"] == expected[key]["total_cost"]
    records = api.get("/v1/calls", params={"since": since, "limit": 1000}).json()["calls"]
    priced = [r for r in records if "total_cost" in r.get("cost_metrics", {})]
    priced.sort(key=lambda r: (Decimal(r["cost_metrics"]["total_cost"]), r["started_at"]), reverse=True)
    assert row_ids(page, "#top-calls tbody tr") == [r["id"] for r in priced[:10]]
    top = table(found, "top-calls")
    for record in priced[:10]:
        money(top[record["id"]]["total_cost"], record["cost_metrics"]["total_cost"])
    if period in ("7d", "24h"):
        shoot(page, f"overview-{period}", "wide")
    page.close()


def test_calls_page_pages_and_filters_like_the_api(session, api):
    page = session.new_page()
    page.goto("/calls?limit=25")
    expected = [r["id"] for r in api.get("/v1/calls", params={"limit": 1000}).json()["calls"]]
    seen = row_ids(page, "#calls-table tbody tr")
    shoot(page, "calls", "wide")
    while page.query_selector("#next-page"):
        page.click("#next-page")
        page.wait_for_load_state()
        seen += row_ids(page, "#calls-table tbody tr")
    assert seen == expected
    page.goto("/calls")
    assert not page.is_visible("#f-user")  # no filter set: the form is folded away
    page.click(".filters > summary")
    page.fill("#f-user", "ann")
    page.select_option("#f-status", "error")
    page.click(".filterform button[type=submit]")
    page.wait_for_url("**/calls?**")
    wanted = api.get("/v1/calls", params={"user_id": "ann", "status": "error"}).json()["calls"]
    assert row_ids(page, "#calls-table tbody tr") == [r["id"] for r in wanted]
    assert page.input_value("#f-user") == "ann"
    assert "user_id=ann, status=error" in page.inner_text(".filters > summary")
    page.fill("#f-min-cost", "not money")
    page.click(".filterform button[type=submit]")
    assert page.inner_text("#filter-error").startswith("min_cost:")
    page.close()


def test_call_detail_shows_the_record_and_its_evaluation(session, api, data):
    rich = data["rich"]
    page = session.new_page()
    page.goto("/calls?user_id=ann&model=gpt-4o&tenant_id=acme")
    page.click(f"#calls-table tr[data-id='{rich.id}'] a")
    page.wait_for_url(f"**/calls/{rich.id}")
    detail = api.get(f"/v1/calls/{rich.id}").json()
    for section in ("identity", "token_usage", "cost_metrics", "performance_metrics", "request_parameters",
                    "response_metadata", "rate_limit_info", "attribution", "metadata", "response_schema",
                    "evaluations"):  # fmt: skip
        assert page.is_visible(f"#section-{section}"), section
    cost = detail["cost_metrics"]
    for name in ("total_cost", "input_cost", "cache_read_cost", "output_cost"):
        assert page.inner_text(f"[data-field='cost_metrics.{name}'] dd") == usd(cost[name])
    assert page.inner_text("[data-field='cost_metrics.price_version'] dd") == cost["price_version"]
    assert page.inner_text("[data-field='response_metadata.request_id'] dd") == "req_rich_1"
    assert page.inner_text("[data-field='rate_limit_info.requests_remaining'] dd") == "9,998"
    assert '"answer"' in page.inner_text("#section-response_schema pre")
    evaluation = detail["evaluations"][0]
    found = table(metrics(page), "evaluations-table")
    money(found[evaluation["id"]]["evaluation_cost"], evaluation["evaluation_cost"])
    assert "Ragas" in page.inner_text("#evaluations-table")
    shoot(page, "call-detail", "wide")
    page.close()


@pytest.mark.parametrize(
    ("link", "dimension"), [("Users", "user_id"), ("Tenants", "tenant_id"), ("Features", "feature")]
)
def test_breakdowns_match_the_api(session, api, link, dimension):
    page = session.new_page()
    page.goto("/")
    page.click(f".mainnav a:text-is('{link}')")
    page.click(".periods a:text-is('90d')")
    page.wait_for_url("**period=90d**")
    since = since_of(page)
    rows = api.get("/v1/usage", params={"since": since, "group_by": dimension}).json()["rows"]
    cells = table(metrics(page), "breakdown-table")
    assert set(cells) == {("" if r[dimension] is None else r[dimension]) for r in rows}
    for row in rows:
        shown = cells["" if row[dimension] is None else row[dimension]]
        for name in ("calls", "errors", "input_tokens", "output_tokens"):
            assert shown[name]["value"] == str(row[name])
        assert shown["total_cost"]["value"] == row["total_cost"]
        if row["unpriced_calls"] < row["calls"]:
            money(shown["total_cost"], row["total_cost"])
    if dimension == "user_id":
        shoot(page, "by-user", "wide")
    page.close()


def test_api_key_login_and_project_scope(browser, served, api, data):
    context = browser.new_context(viewport=SIZES["wide"], base_url=served.url)
    try:
        page = context.new_page()
        page.goto("/calls")
        assert "/login" in page.url
        shoot(page, "login", "wide")
        page.fill("#api-key", "tt_wrong_key_000000000000000000")
        page.click(".loginform button[type=submit]")
        assert page.inner_text("#login-error") == "Unknown or revoked API key."
        page.fill("#api-key", data["batch_key"])
        page.click(".loginform button[type=submit]")
        page.wait_for_url("**/calls")  # back where the visitor was going
        assert page.get_attribute(".scope", "data-scope") == "batch"
        scoped = {"Authorization": f"Bearer {data['batch_key']}"}
        ids = [r["id"] for r in api.get("/v1/calls", params={"limit": 1000}, headers=scoped).json()["calls"]]
        shown = row_ids(page, "#calls-table tbody tr")
        while page.query_selector("#next-page"):
            page.click("#next-page")
            page.wait_for_load_state()
            shown += row_ids(page, "#calls-table tbody tr")
        batch = {c.id for c in data["calls"] if c.attribution and c.attribution.project == "batch"}
        assert shown == ids and set(shown) == batch
        page.goto("/?period=90d")
        since = since_of(page)
        total = api.get("/v1/usage", params={"since": since}, headers=scoped).json()["rows"][0]
        found = metrics(page)
        money(one(found, "totals", "total_cost"), total["total_cost"])
        assert one(found, "totals", "calls")["value"] == str(total["calls"])
        assert set(row_ids(page, "#top-calls tbody tr")) <= batch
        assert page.query_selector("#project-select") is None  # no project selector
        assert page.goto("/?project=web").status == 403
        other = next(c for c in data["calls"] if c.attribution and c.attribution.project == "web")
        assert page.goto(f"/calls/{other.id}").status == 404
        page.goto("/")
        page.click("form[action='/logout'] button")
        page.wait_for_url("**/login")
        assert page.goto("/").url.endswith("/login")
    finally:
        context.close()


def test_narrow_screens(browser, served, session):
    """At 390x844 no page is wider than the screen (wide tables scroll inside their card)."""
    context = browser.new_context(viewport=SIZES["narrow"], base_url=served.url)
    try:
        context.add_cookies(session.cookies())
        page = context.new_page()
        for name, path in [("overview-7d", "/?period=7d"), ("calls", "/calls"), ("by-user", "/by/user?period=90d")]:
            page.goto(path)
            assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["narrow"]["width"], name
            assert page.is_visible(".mainnav")
            shoot(page, name, "narrow")
        page.goto("/calls")
        page.click("#calls-table tbody tr a")
        page.wait_for_url("**/calls/*")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["narrow"]["width"]
        shoot(page, "call-detail", "narrow")
        context.clear_cookies()
        page.goto("/login")
        shoot(page, "login", "narrow")
    finally:
        context.close()
