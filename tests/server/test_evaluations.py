"""Evaluations (seed 001) over HTTP on SQLite and PostgreSQL: the catalog, results attached to
calls with the judge's `llm_metadata` (validated, priced when no cost is given), the call
detail listing them, cost by vendor and by evaluation, and project scoping."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from server_helpers import ADMIN, T0, make_call, post_calls, project_key

from tokentrail.core import TokenUsage
from tokentrail.pricing import calculate_cost
from tokentrail.server.db.evaluation_models import LLM_METADATA_GIN

# The seed's example judge call (floats as PromptForge sends them).
SEED_METADATA = {
    "provider": "openai",
    "provider_model": "gpt-4-turbo-2024-04-09",
    "token_usage": {
        "input_tokens": 1234,
        "output_tokens": 567,
        "total_tokens": 1801,
        "cache_read_tokens": None,
        "cache_creation_tokens": None,
    },
    "cost_metrics": {
        "input_cost": 0.01234,
        "output_cost": 0.01701,
        "total_cost": 0.02935,
        "input_price_per_1k": 0.01,
        "output_price_per_1k": 0.03,
    },
    "performance_metrics": {"total_duration_ms": 3245.67, "time_to_first_token_ms": 234.12},
    "request_parameters": {"model": "gpt-4-turbo-2024-04-09", "temperature": 0.0, "max_tokens": 1024},
    "response_metadata": {"finish_reason": "stop", "request_id": "req_abc123xyz789"},
    "request_timestamp": "2025-10-06T15:30:00.123Z",
    "response_timestamp": "2025-10-06T15:30:03.368Z",
}


def catalog(client, name, vendor=None, headers=ADMIN, **extra):
    body = {"name": name, "source": "vendor" if vendor else "custom", **extra}
    if vendor:
        body["vendor_name"] = vendor
        body["adapter"] = f"{vendor}Adapter"
    response = client.post("/v1/evaluations/catalog", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def attach(client, call_id, body, headers=ADMIN, status=201):
    response = client.post(f"/v1/calls/{call_id}/evaluations", json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def judge(model="gpt-4o-mini", input_tokens=2000, output_tokens=300, provider="openai", **extra):
    return {
        "provider": provider,
        "provider_model": model,
        "token_usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        "started_at": T0.isoformat(),
        **extra,
    }


def test_catalog_create_update_list(client):
    created = client.post(
        "/v1/evaluations/catalog",
        json={
            "name": "Contextual Relevancy",
            "source": "vendor",
            "vendor_name": "DeepEval",
            "adapter": "DeepEvalAdapter",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201
    entry = created.json()
    assert entry["vendor_name"] == "DeepEval" and entry["source"] == "vendor" and "project" not in entry
    again = client.post(
        "/v1/evaluations/catalog",
        json={"name": "Contextual Relevancy", "source": "vendor", "vendor_name": "DeepEval", "description": "v2"},
        headers=ADMIN,
    )
    assert again.status_code == 200 and again.json()["id"] == entry["id"] and again.json()["description"] == "v2"
    catalog(client, "Faithfulness", "Ragas")
    names = [e["name"] for e in client.get("/v1/evaluations/catalog", headers=ADMIN).json()["evaluations"]]
    assert names == ["Contextual Relevancy", "Faithfulness"]


def test_catalog_rejects_bad_entries(client):
    for body, field in (
        ({"source": "vendor"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "vendor_name": "v" * 101}, "vendor_name"),
        ({"name": "x", "vendr_name": "typo"}, "vendr_name"),
        ({"name": "a\x00b"}, "name"),
    ):
        response = client.post("/v1/evaluations/catalog", json=body, headers=ADMIN)
        assert response.status_code == 400, body
        assert response.json()["detail"][0]["field"] == field


def test_result_with_seed_metadata_appears_on_the_call(client):
    call = make_call()
    post_calls(client, [call])
    catalog(client, "Contextual Relevancy", "DeepEval")
    stored = attach(
        client,
        call.id,
        {
            "evaluation": "Contextual Relevancy",
            "score": 0.87,
            "passed": True,
            "reason": "High contextual relevancy",
            "execution_time_ms": 3245.67,
            "llm_metadata": SEED_METADATA,
        },
    )
    assert stored["vendor_name"] == "DeepEval" and stored["evaluation_source"] == "vendor"
    assert (stored["input_tokens"], stored["output_tokens"], stored["total_tokens"]) == (1234, 567, 1801)
    assert stored["evaluation_cost"] == "0.02935"  # the reported cost, exact
    meta = stored["llm_metadata"]
    assert meta["cost_metrics"]["total_cost"] == "0.02935" and meta["cost_metrics"]["output_cost"] == "0.01701"
    assert meta["token_usage"] == {"input_tokens": 1234, "output_tokens": 567, "total_tokens": 1801}
    assert meta["request_parameters"]["max_tokens"] == 1024

    detail = client.get(f"/v1/calls/{call.id}", headers=ADMIN).json()
    assert [e["id"] for e in detail["evaluations"]] == [stored["id"]]
    assert detail["evaluations"][0]["score"] == 0.87 and detail["evaluations"][0]["passed"] is True
    assert {k: v for k, v in detail.items() if k != "evaluations"} == call.to_dict()
    listed = client.get(f"/v1/calls/{call.id}/evaluations", headers=ADMIN).json()["evaluations"]
    assert listed == detail["evaluations"]


def test_a_call_without_results_has_no_evaluations_key(client):
    call = make_call()
    post_calls(client, [call])
    assert "evaluations" not in client.get(f"/v1/calls/{call.id}", headers=ADMIN).json()


def test_judge_cost_is_computed_when_absent(client):
    call = make_call()
    post_calls(client, [call])
    catalog(client, "tone", "inhouse")
    stored = attach(client, call.id, {"evaluation": "tone", "score": 1, "llm_metadata": judge()})
    expected = calculate_cost(
        "openai", "gpt-4o-mini", TokenUsage.build(input_tokens=2000, output_tokens=300), at=T0
    ).total_cost
    assert expected is not None and expected > 0
    assert Decimal(stored["evaluation_cost"]) == expected
    assert stored["llm_metadata"]["cost_metrics"]["pricing_status"] == "priced"
    assert stored["total_tokens"] == 2300  # filled from input + output
    # an unknown judge model is stored unpriced, never $0
    unknown = attach(client, call.id, {"evaluation": "tone", "llm_metadata": judge(model="judge-9000-private")})
    assert "evaluation_cost" not in unknown
    assert unknown["llm_metadata"]["cost_metrics"]["pricing_status"] == "unpriced"
    # provider spelling normalized
    gemini = attach(
        client, call.id, {"evaluation": "tone", "llm_metadata": judge("gemini-2.0-flash", provider="gemini")}
    )
    assert gemini["llm_metadata"]["provider"] == "gcp.gemini" and Decimal(gemini["evaluation_cost"]) > 0


def test_bad_results_are_refused_with_the_field(client):
    call = make_call()
    post_calls(client, [call])
    catalog(client, "tone")
    cases = [
        ({"evaluation": "nope"}, "evaluation"),
        ({"evaluation": "tone", "score": "high"}, "score"),
        ({"evaluation": "tone", "passed": "yes"}, "passed"),
        ({"evaluation": "tone", "execution_time_ms": -1}, "execution_time_ms"),
        (
            {"evaluation": "tone", "llm_metadata": {"token_usage": {"input_tokens": -5}}},
            "llm_metadata.token_usage.input_tokens",
        ),
        (
            {"evaluation": "tone", "llm_metadata": {"token_usage": {"input_tokens": 10, "cache_read_tokens": 20}}},
            "llm_metadata.token_usage.cache_read_tokens",
        ),
        (
            {"evaluation": "tone", "llm_metadata": {"token_usage": {"inpt_tokens": 1}}},
            "llm_metadata.token_usage.inpt_tokens",
        ),
        (
            {"evaluation": "tone", "llm_metadata": {"cost_metrics": {"total_cost": "abc"}}},
            "llm_metadata.cost_metrics.total_cost",
        ),
        (
            {"evaluation": "tone", "llm_metadata": {"cost_metrics": {"total_cost": "1", "currency": "EUR"}}},
            "llm_metadata.cost_metrics.currency",
        ),
        ({"evaluation": "tone", "llm_metadata": {"performance_metrics": 3}}, "llm_metadata.performance_metrics"),
        ({"evaluation": "tone", "llm_metadata": {"provider_specific": {"k": "a\u0000b"}}}, "llm_metadata"),
        ({"evaluation": "tone", "scor": 1}, "scor"),
    ]
    for body, field in cases:
        response = client.post(f"/v1/calls/{call.id}/evaluations", json=body, headers=ADMIN)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["detail"][0]["field"] == field, (body, response.json())
    assert client.post("/v1/calls/missing/evaluations", json={"evaluation": "tone"}, headers=ADMIN).status_code == 404
    assert client.get(f"/v1/calls/{call.id}/evaluations", headers=ADMIN).json() == {"evaluations": []}


def test_result_ids_make_retries_idempotent(client):
    first, second = make_call(), make_call()
    post_calls(client, [first, second])
    catalog(client, "tone")
    body = {"id": "result-1", "evaluation": "tone", "score": 0.5, "llm_metadata": judge()}
    created = attach(client, first.id, body)
    again = attach(client, first.id, body, status=200)
    assert again == created
    assert len(client.get(f"/v1/calls/{first.id}/evaluations", headers=ADMIN).json()["evaluations"]) == 1
    conflict = client.post(f"/v1/calls/{second.id}/evaluations", json=body, headers=ADMIN)
    assert conflict.status_code == 409


def test_costs_by_vendor_and_by_evaluation(client):
    calls = [make_call(at=T0 + timedelta(minutes=i)) for i in range(3)]
    post_calls(client, calls)
    catalog(client, "relevancy", "DeepEval")
    catalog(client, "faithfulness", "Ragas")
    catalog(client, "hallucination", "DeepEval")
    plan = [
        (calls[0], "relevancy", judge(input_tokens=1000, output_tokens=100), T0),
        (calls[1], "relevancy", judge(input_tokens=3000, output_tokens=200), T0 + timedelta(days=1)),
        (calls[1], "hallucination", judge("gpt-4o", 500, 50), T0 + timedelta(days=1)),
        (calls[2], "faithfulness", judge("gpt-4o", 700, 70), T0 + timedelta(days=2)),
        (calls[2], "faithfulness", None, T0 + timedelta(days=2)),  # no judge LLM: counted, costs nothing
    ]
    expected_cost: dict[str, Decimal] = {}
    expected_tokens: dict[str, int] = {}
    expected_calls: dict[str, int] = {}
    vendor_of = {"relevancy": "DeepEval", "hallucination": "DeepEval", "faithfulness": "Ragas"}
    for call, name, meta, at in plan:
        body = {"evaluation": name, "evaluated_at": at.isoformat(), "score": 0.5}
        if meta is not None:
            body["llm_metadata"] = meta
        stored = attach(client, call.id, body)
        expected_calls[name] = expected_calls.get(name, 0) + 1
        expected_cost[name] = expected_cost.get(name, Decimal(0)) + Decimal(stored.get("evaluation_cost", "0"))
        expected_tokens[name] = expected_tokens.get(name, 0) + stored.get("total_tokens", 0)

    rows = client.get("/v1/evaluations/costs", params={"group_by": "evaluation"}, headers=ADMIN).json()["rows"]
    by_name = {r["evaluation"]: r for r in rows}
    assert set(by_name) == set(vendor_of)
    for name, row in by_name.items():
        assert row["vendor_name"] == vendor_of[name]
        assert row["calls"] == expected_calls[name] and row["total_tokens"] == expected_tokens[name]
        assert Decimal(row["total_cost"]) == expected_cost[name]
    costs = [Decimal(r["total_cost"]) for r in rows]
    assert costs == sorted(costs, reverse=True)

    vendors = client.get("/v1/evaluations/costs", params={"group_by": "vendor"}, headers=ADMIN).json()["rows"]
    deep = next(r for r in vendors if r["vendor_name"] == "DeepEval")
    assert deep["calls"] == 3
    assert Decimal(deep["total_cost"]) == expected_cost["relevancy"] + expected_cost["hallucination"]
    assert deep["input_tokens"] == 4500 and deep["output_tokens"] == 350

    window = {
        "group_by": "vendor",
        "since": (T0 + timedelta(days=1)).isoformat(),
        "until": (T0 + timedelta(days=2)).isoformat(),
    }
    windowed = client.get("/v1/evaluations/costs", params=window, headers=ADMIN).json()["rows"]
    assert [(r["vendor_name"], r["calls"]) for r in windowed] == [("DeepEval", 2)]

    by_model = client.get("/v1/evaluations/costs", params={"group_by": "model"}, headers=ADMIN).json()["rows"]
    assert {r["model"]: r["calls"] for r in by_model} == {"gpt-4o-mini": 2, "gpt-4o": 2, None: 1}
    bad = client.get("/v1/evaluations/costs", params={"group_by": "tenant"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["detail"][0]["field"] == "group_by"


def test_project_keys_see_only_their_project(client):
    alpha, beta = project_key(client.app, "alpha"), project_key(client.app, "beta")
    mine, theirs = make_call(project="alpha"), make_call(project="beta")
    post_calls(client, [mine, theirs])
    catalog(client, "shared-check", "Ragas")  # admin, no project: every project sees it
    own = catalog(client, "alpha-only", headers=alpha)
    assert own["project"] == "alpha"
    assert (
        client.post("/v1/evaluations/catalog", json={"name": "x", "project": "beta"}, headers=alpha).status_code == 403
    )
    assert {e["name"] for e in client.get("/v1/evaluations/catalog", headers=beta).json()["evaluations"]} == {
        "shared-check"
    }
    assert {e["name"] for e in client.get("/v1/evaluations/catalog", headers=alpha).json()["evaluations"]} == {
        "shared-check",
        "alpha-only",
    }
    attach(client, mine.id, {"evaluation": "alpha-only", "llm_metadata": judge()}, headers=alpha)
    attach(client, mine.id, {"evaluation": "shared-check", "llm_metadata": judge()}, headers=alpha)
    # beta cannot use alpha's catalog entry, nor touch alpha's call
    refused = client.post(f"/v1/calls/{theirs.id}/evaluations", json={"evaluation": "alpha-only"}, headers=beta)
    assert refused.status_code == 400 and refused.json()["detail"][0]["field"] == "evaluation"
    assert (
        client.post(f"/v1/calls/{mine.id}/evaluations", json={"evaluation": "shared-check"}, headers=beta).status_code
        == 404
    )
    assert client.get(f"/v1/calls/{mine.id}/evaluations", headers=beta).status_code == 404
    attach(client, theirs.id, {"evaluation": "shared-check", "llm_metadata": judge("gpt-4o")}, headers=beta)

    beta_rows = client.get("/v1/evaluations/costs", headers=beta).json()["rows"]
    assert [(r["vendor_name"], r["calls"]) for r in beta_rows] == [("Ragas", 1)]
    assert client.get("/v1/evaluations/costs", params={"project": "alpha"}, headers=beta).status_code == 403
    admin_rows = client.get("/v1/evaluations/costs", params={"group_by": "evaluation"}, headers=ADMIN).json()["rows"]
    assert sum(r["calls"] for r in admin_rows) == 3
    alpha_rows = client.get("/v1/evaluations/costs", params={"project": "alpha"}, headers=ADMIN).json()["rows"]
    assert sum(r["calls"] for r in alpha_rows) == 2


def test_llm_metadata_storage_is_jsonb_with_gin_on_postgres(client):
    db = client.app.state.db
    inspector = sa.inspect(db.engine)
    indexes = {ix["name"] for ix in inspector.get_indexes("call_evaluations")}
    columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("call_evaluations")}
    if db.dialect_name == "postgresql":
        assert LLM_METADATA_GIN in indexes and columns["llm_metadata"] == "JSONB"
        call = make_call()
        post_calls(client, [call])
        catalog(client, "tone")
        attach(client, call.id, {"evaluation": "tone", "llm_metadata": judge()})
        with db.read() as conn:
            found = conn.exec_driver_sql(
                'SELECT count(*) FROM call_evaluations WHERE llm_metadata @> \'{"provider": "openai"}\''
            ).scalar()
        assert found == 1
    else:
        assert LLM_METADATA_GIN not in indexes and columns["llm_metadata"] == "TEXT"
