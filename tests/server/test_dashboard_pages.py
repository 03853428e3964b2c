"""Dashboard pages (issue 6) show exactly what the API answers: the overview's totals,
series, breakdowns and top calls equal `GET /v1/usage` and `GET /v1/calls` for the same
period; the calls page pages like the API; the call detail shows every section. SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, ADMIN_KEY, make_call, post_calls

from tokentrail.core import (
    LLMCall,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
)
from tokentrail.server.dashboard.format import usd

VOID = {"input", "meta", "link", "br", "img", "hr", "source", "col", "area", "base", "wbr"}


class Page(HTMLParser):
    """Every element carrying `data-metric`, with the nearest enclosing `id` (its table or
    card) and `data-key` or `data-id` (its row), and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str], list[str]]] = []
        self.metrics: list[dict[str, str | None]] = []
        self.rows: dict[str, list[str]] = {}  # table id -> data-key / data-id of each row, in order
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "tr" and ("data-key" in values or "data-id" in values):
            table = self._nearest("id")
            self.rows.setdefault(table or "", []).append(values.get("data-key", values.get("data-id", "")))
        if tag in VOID:
            return
        self.stack.append((tag, values, []))

    def handle_data(self, data: str) -> None:
        for _, _, text in self.stack:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            name, values, text = self.stack.pop()
            if "data-metric" in values:
                self.metrics.append(
                    {
                        "scope": self._nearest("id"),
                        "key": self._row_key(),
                        "metric": values["data-metric"],
                        "value": values.get("data-value"),
                        "text": " ".join("".join(text).split()),
                    }
                )
            if name == tag:
                return

    def _row_key(self) -> str | None:
        for _, values, _ in reversed(self.stack):
            for attribute in ("data-key", "data-id"):
                if attribute in values:
                    return values[attribute]
        return None

    def _nearest(self, attribute: str) -> str | None:
        for _, values, _ in reversed(self.stack):
            if attribute in values:
                return values[attribute]
        return None

    def metric(self, scope: str, metric: str, key: str | None = None) -> dict[str, str | None]:
        found = [m for m in self.metrics if m["scope"] == scope and m["metric"] == metric and m["key"] == key]
        assert len(found) == 1, (scope, metric, key, found)
        return found[0]

    def table(self, scope: str) -> dict[str, dict[str, dict[str, str | None]]]:
        """row key -> metric -> element, for one table."""
        out: dict[str, dict[str, dict[str, str | None]]] = {}
        for m in self.metrics:
            if m["scope"] == scope and m["key"] is not None:
                out.setdefault(m["key"], {})[str(m["metric"])] = m
        return out


class Balanced(HTMLParser):
    """Strict nesting: every element the templates open is closed, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.feed(html)
        self.errors += [f"<{tag}> never closed" for tag in self.stack]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <rect/> and friends

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def since_of(html: str) -> str:
    match = re.search(r'<time id="since" datetime="([^"]+)"', html)
    assert match, "the page names its period start"
    return match.group(1)


def api(client: TestClient, path: str, **params: str) -> Any:
    response = client.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def money_text(text: str) -> Decimal:
    """The amount a visible `$1,234.5` spells."""
    assert text.startswith("$"), text
    return Decimal(text[1:].replace(",", ""))


def check_money(element: dict[str, str | None], expected: str) -> None:
    assert element["value"] == expected
    assert element["text"] == usd(expected)
    assert money_text(str(element["text"])) == Decimal(expected)  # exact, never rounded


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def population(client: TestClient, now: datetime) -> list[LLMCall]:
    def at(**delta: float) -> datetime:
        return now - timedelta(**delta)

    calls = [
        make_call(at=at(hours=2), user_id="ann", feature="chat", tenant_id="t1", cache_read=400, ms=120),
        make_call(at=at(hours=5), provider="anthropic", model="claude-3-5-sonnet-latest", user_id="bob",
                  feature="search", tenant_id="t2", error=True, ms=2400),
        make_call(at=at(hours=30), model="gpt-4o-mini", user_id="ann", feature="chat", project="beta", ms=80),
        make_call(at=at(days=3), user_id="carol", feature="summarize", tenant_id="t1", project="beta",
                  input_tokens=50_000, output_tokens=900, ms=5100),
        make_call(at=at(days=10), user_id="dave", feature="chat", input_tokens=3333, output_tokens=77, ms=640),
        make_call(at=at(days=40), model="my-private-model", priced=False, user_id="ann", ms=300),
        make_call(at=at(days=100), user_id="old", feature="chat", input_tokens=99_999),
        make_call(at=at(hours=1), project=None, user_id=None, feature=None, input_tokens=10, output_tokens=1),
        make_call(at=at(minutes=30), model="gpt-4o-mini", user_id="erin", feature="search", tenant_id="t2",
                  input_tokens=123_457, output_tokens=6789, cache_read=100_000, ms=900),
    ]  # fmt: skip
    post_calls(client, calls)
    return calls


@pytest.fixture
def admin_session(client: TestClient) -> TestClient:
    assert client.post("/login", data={"api_key": ADMIN_KEY}, follow_redirects=False).status_code == 303
    return client


TOTALS = ("calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens")


@pytest.mark.parametrize("period", ["24h", "7d", "30d", "90d"])
def test_overview_equals_the_usage_api(admin_session, population, period):
    client = admin_session
    html = client.get(f"/?period={period}").text
    page, since = Page(html), since_of(html)
    total = api(client, "/v1/usage", since=since)["rows"][0]
    check_money(page.metric("totals", "total_cost"), total["total_cost"])
    for name in TOTALS:
        assert page.metric("totals", name)["value"] == str(total[name]), name
    assert page.metric("totals", "p95_ms")["value"] == str(total["p95_ms"])
    assert page.metric("totals", "p50_ms")["value"] == str(total["p50_ms"])
    unpriced = [m for m in page.metrics if m["metric"] == "unpriced_calls"]
    assert [m["value"] for m in unpriced] == ([str(total["unpriced_calls"])] if total["unpriced_calls"] else [])
    assert page.metric("totals", "cache_share")["value"] == f"{total['cache_read_tokens']}/{total['input_tokens']}"
    assert page.metric("totals", "error_rate")["value"] == f"{total['errors']}/{total['calls']}"

    bucket = "hour" if period == "24h" else "day"
    series = {row[bucket]: row for row in api(client, "/v1/usage", since=since, group_by=bucket)["rows"]}
    shown = page.table("spend-table")
    assert set(series) <= set(shown)
    for key, cells in shown.items():
        expected = series.get(key, {"calls": 0, "total_cost": "0"})
        assert cells["calls"]["value"] == str(expected["calls"])
        check_money(cells["total_cost"], expected["total_cost"])
    assert len(shown) == (25 if period == "24h" else int(period[:-1]) + 1)  # every bucket, empty ones too
    bars = re.findall(
        r'data-bucket="([^"]+)" data-value="([^"]+)"', html.split('id="spend-chart"')[1].split("</svg>")[0]
    )
    assert {k: Decimal(v) for k, v in bars} == {k: Decimal(c["total_cost"]["value"]) for k, c in shown.items()}

    for dimension in ("model", "provider", "user_id", "feature"):
        rows = api(client, "/v1/usage", since=since, group_by=dimension)["rows"]
        shown = page.table(f"by-{dimension}")
        expected = {("" if r[dimension] is None else r[dimension]): r for r in rows}
        assert set(shown) == set(expected), dimension
        order = [k for k in page.rows[f"by-{dimension}"]]
        assert [Decimal(expected[k]["total_cost"]) for k in order] == sorted(
            (Decimal(r["total_cost"]) for r in rows), reverse=True
        )
        for key, cells in shown.items():
            for name in ("calls", "input_tokens", "output_tokens"):
                assert cells[name]["value"] == str(expected[key][name]), (dimension, key, name)
            assert cells["total_cost"]["value"] == expected[key]["total_cost"]

    records = api(client, "/v1/calls", since=since, limit="1000")["calls"]
    priced = [r for r in records if r.get("cost_metrics", {}).get("total_cost") is not None]
    priced.sort(key=lambda r: (Decimal(r["cost_metrics"]["total_cost"]), r["started_at"]), reverse=True)
    assert page.rows.get("top-calls", []) == [r["id"] for r in priced[:10]]
    top = page.table("top-calls")
    assert list(top) == [r["id"] for r in priced[:10]]
    for record in priced[:10]:
        check_money(top[record["id"]]["total_cost"], record["cost_metrics"]["total_cost"])


def test_overview_for_one_project_and_the_project_selector(admin_session, population):
    client = admin_session
    html = client.get("/?period=90d&project=beta").text
    page, since = Page(html), since_of(html)
    total = api(client, "/v1/usage", since=since, project="beta")["rows"][0]
    check_money(page.metric("totals", "total_cost"), total["total_cost"])
    assert page.metric("totals", "calls")["value"] == str(total["calls"]) == "2"
    assert '<option value="alpha">' in html and '<option value="beta" selected>' in html
    assert set(page.rows["top-calls"]) <= {
        c.id for c in population if c.attribution and c.attribution.project == "beta"
    }


@pytest.mark.parametrize(("name", "dimension"), [("user", "user_id"), ("tenant", "tenant_id"), ("feature", "feature")])
def test_breakdowns_equal_the_usage_api(admin_session, population, name, dimension):
    client = admin_session
    html = client.get(f"/by/{name}?period=30d").text
    page, since = Page(html), since_of(html)
    rows = api(client, "/v1/usage", since=since, group_by=dimension)["rows"]
    shown = page.table("breakdown-table")
    assert set(shown) == {("" if r[dimension] is None else r[dimension]) for r in rows}
    for row in rows:
        cells = shown["" if row[dimension] is None else row[dimension]]
        for metric in ("calls", "errors", "input_tokens", "output_tokens"):
            assert cells[metric]["value"] == str(row[metric])
        assert cells["p95_ms"]["value"] == str(row["p95_ms"])
        if row["unpriced_calls"] == row["calls"]:
            assert cells["total_cost"]["text"] == "unpriced"  # never $0
        else:
            check_money(cells["total_cost"], row["total_cost"])
    total = api(client, "/v1/usage", since=since)["rows"][0]
    check_money(page.metric("breakdown-summary", "total_cost"), total["total_cost"])
    assert page.metric("breakdown-summary", "groups")["value"] == str(len(rows))
    bars = re.findall(r'data-bucket="([^"]+)" data-value="([^"]+)"', html)
    days = {r["day"]: Decimal(r["total_cost"]) for r in api(client, "/v1/usage", since=since, group_by="day")["rows"]}
    assert {k: Decimal(v) for k, v in bars if Decimal(v)} == {k: v for k, v in days.items() if v}


def test_unknown_breakdown_and_bad_period(admin_session):
    assert admin_session.get("/by/nothing").status_code == 404
    bad = admin_session.get("/?period=1y")
    assert bad.status_code == 400 and "period" in bad.text


def test_calls_page_pages_like_the_api(admin_session, population):
    client = admin_session
    expected = [r["id"] for r in api(client, "/v1/calls", limit="1000")["calls"]]
    seen: list[str] = []
    path = "/calls?limit=4"
    pages = 0
    while path:
        html = client.get(path).text
        page = Page(html)
        seen += page.rows.get("calls-table", [])
        match = re.search(r'<a href="([^"]+)" id="next-page"', html)
        path = match.group(1).replace("&amp;", "&") if match else ""
        pages += 1
        if pages > 1:
            assert 'id="first-page"' in html
    assert seen == expected and pages == 3


@pytest.mark.parametrize(
    "params",
    [
        {"user_id": "ann"},
        {"status": "error"},
        {"provider": "anthropic"},
        {"model": "gpt-4o-mini"},
        {"tenant_id": "t2", "feature": "search"},
        {"min_cost": "0.01"},
        {"project": "beta"},
        {"operation": "chat", "until": "2100-01-01"},
    ],
)
def test_calls_page_filters_like_the_api(admin_session, population, params):
    client = admin_session
    expected = [r["id"] for r in api(client, "/v1/calls", **params)["calls"]]
    html = client.get("/calls", params=params).text
    assert Page(html).rows.get("calls-table", []) == expected
    for value in params.values():
        assert f'value="{value}"' in html or f"<option selected>{value}</option>" in html  # the form keeps it


def test_calls_page_metadata_filter(admin_session, client, now):
    calls = [make_call(at=now, metadata={"env": "prod"}), make_call(at=now, metadata={"env": "dev"})]
    post_calls(client, calls)
    for query in ({"meta": "env=prod"}, {"metadata.env": "prod"}):
        assert Page(admin_session.get("/calls", params=query).text).rows["calls-table"] == [calls[0].id]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"min_cost": "lots"}, "min_cost"), ({"since": "yesterday"}, "since"), ({"cursor": "x"}, "cursor"),
     ({"meta": "novalue"}, "meta")],
)  # fmt: skip
def test_calls_page_names_a_bad_filter(admin_session, params, field):
    response = admin_session.get("/calls", params=params)
    assert response.status_code == 400
    assert re.search(rf'id="filter-error">{field}: ', response.text)


def test_call_detail_shows_every_section(admin_session, client, now):
    base = make_call(at=now - timedelta(minutes=5), user_id="ann", feature="chat", tenant_id="t1", error=True)
    call = base.replace(
        performance_metrics=PerformanceMetrics(total_duration_ms=1234.5, time_to_first_token_ms=210.0),
        request_parameters=RequestParameters(temperature=0.2, max_tokens=512, stop_sequences=["END"], seed=7),
        response_metadata=ResponseMetadata(finish_reason="stop", request_id="req_abc123", system_fingerprint="fp_1"),
        rate_limit_info=RateLimitInfo(requests_limit=500, requests_remaining=499, tokens_limit=30000),
        metadata={"ticket": "T-42", "nested": {"a": 1}},
        response_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
    )
    post_calls(client, [call])
    entry = {"name": "faithfulness", "source": "vendor", "vendor_name": "Ragas"}
    assert client.post("/v1/evaluations/catalog", json=entry, headers=ADMIN).status_code in (200, 201)
    judge = {
        "provider": "openai",
        "provider_model": "gpt-4o-mini",
        "token_usage": {"input_tokens": 2000, "output_tokens": 300},
        "started_at": now.isoformat(),
    }
    result = {"evaluation": "faithfulness", "score": 0.87, "passed": True, "reason": "grounded", "llm_metadata": judge}
    assert client.post(f"/v1/calls/{call.id}/evaluations", json=result, headers=ADMIN).status_code == 201
    detail = api(client, f"/v1/calls/{call.id}")
    html = admin_session.get(f"/calls/{call.id}").text
    for section in ("identity", "token_usage", "cost_metrics", "performance_metrics", "request_parameters",
                    "response_metadata", "rate_limit_info", "attribution", "error", "metadata", "response_schema",
                    "evaluations"):  # fmt: skip
        assert f'id="section-{section}"' in html, section
    cost = detail["cost_metrics"]
    for name in ("total_cost", "input_cost", "output_cost", "cache_read_cost"):
        if name in cost:
            assert re.search(
                rf'data-field="cost_metrics.{name}"><dt>[^<]+</dt><dd>{re.escape(usd(cost[name]))}</dd>', html
            )
    assert f"<dd>{cost['pricing_status']}</dd>" in html and f"<dd>{cost['price_version']}</dd>" in html
    assert "req_abc123" in html and "T-42" in html and "&#34;answer&#34;: {" in html  # the schema, as JSON
    assert "RateLimitError" in html
    evaluation = detail["evaluations"][0]
    page = Page(html)
    cell = page.table("evaluations-table")[evaluation["id"]]["evaluation_cost"]
    check_money(cell, evaluation["evaluation_cost"])
    assert "Ragas" in html and "faithfulness" in html and "grounded" in html


def test_every_page_is_well_formed(admin_session, population):
    call = population[1]
    for path in ["/", "/?period=24h", "/?period=90d&project=beta", "/calls", "/calls?limit=2", f"/calls/{call.id}",
                 "/by/user", "/by/tenant", "/by/feature", "/by/model", "/by/provider", "/by/project",
                 "/calls?min_cost=x", "/calls/nothing", "/?period=2y"]:  # fmt: skip
        assert Balanced(admin_session.get(path).text).errors == [], path
    admin_session.cookies.clear()
    assert Balanced(admin_session.get("/login").text).errors == []


def test_unknown_call_is_404(admin_session):
    response = admin_session.get("/calls/not-a-call")
    assert response.status_code == 404 and "not found" in response.text.lower()


def test_pages_carry_security_headers_and_the_stylesheet_is_served(admin_session):
    page = admin_session.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    css = admin_session.get("/static/dashboard/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and ".kpi" in css.text
    assert admin_session.get("/static/dashboard/../app.py").status_code == 404
    assert admin_session.get("/static/dashboard/nothing.js").status_code == 404


def test_html_is_escaped(admin_session, client, now):
    call = make_call(at=now, user_id="<script>alert(1)</script>", feature='"quoted"')
    post_calls(client, [call])
    html = admin_session.get("/?period=24h").text + admin_session.get(f"/calls/{call.id}").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
