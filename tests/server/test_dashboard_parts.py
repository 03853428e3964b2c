"""The dashboard's parts: exact money formatting, the SVG charts, the call-detail sections,
the top-expensive-calls query (both of its strategies, SQLite and PostgreSQL) and the
0006 migration."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from server_helpers import make_call, post_calls

from tokentrail.core.columns import to_micros
from tokentrail.server.dashboard import charts, detail, queries
from tokentrail.server.dashboard.format import count, duration_ms, percent, percent_of, usd
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database
from tokentrail.server.db.filters import CallFilter


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "$0"),
        ("0.000000000001", "$0.000000000001"),
        (Decimal("1E-12"), "$0.000000000001"),
        ("1234567.891", "$1,234,567.891"),
        ("0.30000000000000004", "$0.30000000000000004"),  # every digit, however many
        ("2.50", "$2.5"),
        ("1E+3", "$1,000"),
        ("-0.5", "-$0.5"),
        (None, "—"),
    ],
)
def test_money_is_written_exactly(value, text):
    assert usd(value) == text


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        usd(0.1)


def test_other_formats():
    assert count(1234567) == "1,234,567" and count(None) == "—"
    assert duration_ms(0.4) == "<1 ms" and duration_ms(250.4) == "250 ms" and duration_ms(1500) == "1.50 s"
    assert duration_ms(90_000) == "1.5 min" and duration_ms(None) == "—"
    assert percent(1, 3) == "33.3%" and percent(0, 0) == "—" and percent(1, 10_000) == "<0.1%"
    assert percent_of("0.25", "1") == "25.0%" and percent_of("1", "0") == "—"


@pytest.mark.parametrize(
    ("maximum", "top", "step"),
    [("0.87", "1", "0.25"), ("0.0123", "0.015", "0.005"), ("9", "10", "2.5"), ("1234", "1500", "500")],
)
def test_axis_scale_is_round_and_covers_the_data(maximum, top, step):
    scale_top, ticks = charts.nice_scale(Decimal(maximum))
    assert scale_top == Decimal(top) and scale_top >= Decimal(maximum)
    assert ticks[0] == 0 and ticks[-1] == scale_top and ticks[1] - ticks[0] == Decimal(step)


def test_stacked_bars_carry_exact_values_and_titles():
    buckets = [
        charts.Bucket("2025-10-14", "Oct 14", (Decimal("0.1"), Decimal("0.2")), "3 calls"),
        charts.Bucket("2025-10-15", "Oct 15", (Decimal(0), Decimal(0))),
        charts.Bucket("2025-10-16", "Oct 16", (Decimal("1.000000000001"), Decimal(0))),
    ]
    svg = str(charts.stacked_bars(buckets, ["a", "b"], title="Spend <per> day", chart_id="c"))
    assert re.findall(r'data-bucket="([^"]+)" data-value="([^"]+)"', svg) == [
        ("2025-10-14", "0.3"),
        ("2025-10-15", "0"),
        ("2025-10-16", "1.000000000001"),
    ]
    assert "<title>2025-10-14: $0.3 (a $0.1 · b $0.2) · 3 calls</title>" in svg
    assert "Spend &lt;per&gt; day" in svg and 'role="img"' in svg
    heights = [float(h) for h in re.findall(r'<rect class="s\d" [^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 3  # empty parts draw nothing
    assert heights[0] * 2 == pytest.approx(heights[1], abs=0.11)  # 0.1 and 0.2 on one scale


def test_detail_sections_show_known_and_unknown_fields():
    record = {
        "id": "x",
        "operation": "chat",
        "started_at": "2025-10-15T10:00:00Z",
        "cost_metrics": {"total_cost": "0.0025", "pricing_status": "priced", "brand_new_field": 1},
        "token_usage": {"input_tokens": 1200, "output_tokens": 30},
        "future_top_level": "kept",
        "metadata": {"k": "v"},
    }
    sections = {s.key: s for s in detail.sections(record)}
    cost = {f.name: f.text for f in sections["cost_metrics"].fields}
    assert cost == {"total_cost": "$0.0025", "pricing_status": "priced", "brand_new_field": "1"}
    assert [f.text for f in sections["token_usage"].fields] == ["1,200", "30"]
    assert {f.name: f.text for f in sections["identity"].fields}["future_top_level"] == "kept"
    assert [key for key, _, _ in detail.json_sections(record)] == ["metadata"]


def test_top_calls_both_strategies_agree_with_a_full_sort(client):
    """Priced calls in three projects and none, over 60 days; for several ranges and scopes
    both strategies give exactly the most expensive calls of the range."""
    rng = random.Random(6)
    now = datetime.now(UTC).replace(microsecond=0)
    calls = []
    for i in range(240):
        calls.append(
            make_call(
                at=now - timedelta(hours=rng.randint(0, 60 * 24)),
                project=rng.choice(["alpha", "beta", "gamma", None]),
                model=rng.choice(["gpt-4o", "gpt-4o-mini", "o3-mini"]),
                input_tokens=rng.randint(1, 90_000),
                output_tokens=rng.randint(1, 4000),
                priced=i % 17 != 0,
            )
        )
    post_calls(client, calls)
    db: Database = client.app.state.db

    def cost(call):
        return call.cost_metrics.total_cost if call.cost_metrics else None

    def project_of(call):
        return call.attribution.project if call.attribution else None

    for days in (1, 7, 30, 90):
        since = now - timedelta(days=days)
        for project in (None, "alpha", "gamma"):
            flt = CallFilter(since=to_micros(since), equals={"project": project} if project else {})
            matching = [c for c in calls if c.started_at >= since and (project is None or project_of(c) == project)]
            expected = sorted(
                (c for c in matching if cost(c) is not None), key=lambda c: (cost(c), c.started_at), reverse=True
            )[:10]
            with db.read() as conn:
                in_period = queries.projects(conn, flt)
                for in_range in (0, 10**9):  # read the range / walk the cost index
                    found = queries.top_calls(conn, flt, in_range=in_range, projects=in_period)
                    assert [r["id"] for r in found] == [c.id for c in expected], (days, project, in_range)


def test_dashboard_migration_up_and_down(db_url):
    db = Database(db_url)
    try:
        migrate.upgrade(db.engine)
        inspector = sa.inspect(db.engine)
        assert "dashboard_sessions" in inspector.get_table_names()
        assert "ix_calls_project_cost" in {ix["name"] for ix in inspector.get_indexes("calls")}
        previous = ScriptDirectory.from_config(migrate._config()).get_revision("0006_dashboard").down_revision
        migrate.downgrade(db.engine, str(previous))
        inspector = sa.inspect(db.engine)
        assert "dashboard_sessions" not in inspector.get_table_names()
        assert "ix_calls_project_cost" not in {ix["name"] for ix in inspector.get_indexes("calls")}
        migrate.upgrade(db.engine)
        assert "dashboard_sessions" in sa.inspect(db.engine).get_table_names()
    finally:
        db.dispose()
