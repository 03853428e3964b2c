"""`POST /traces`: the R4U trace body becomes one priced record (seed 000)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from server_helpers import ADMIN, ThreadServer, project_key

from tokentrail.core import LLMCall, TokenUsage
from tokentrail.pricing import calculate_cost
from tokentrail.server.api.traces import guess_provider
from tokentrail.tracking.client import Client, TraceError

SEED_BODY = {  # the seed's curl example, verbatim
    "model": "gpt-4",
    "messages": [{"role": "user", "content": "Hello"}],
    "result": "Hi!",
    "started_at": "2025-10-15T10:00:00Z",
    "completed_at": "2025-10-15T10:00:01Z",
    "project": "My Project",
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "total_tokens": 15,
    "response_schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
    "trace_metadata": {"environment": "prod", "user_id": "user_123"},
}


def test_the_seed_body_is_stored_as_a_priced_record(client):
    response = client.post("/traces", json=SEED_BODY, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    stored = client.get(f"/v1/calls/{created['id']}", headers=ADMIN).json()
    assert stored == created
    call = LLMCall.from_dict(stored)
    assert call.provider == "openai" and call.request_model == "gpt-4"
    assert call.token_usage == TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    expected = calculate_cost("openai", "gpt-4", call.token_usage, at=call.started_at)
    assert call.cost_metrics.total_cost == expected.total_cost > 0
    assert call.cost_metrics.pricing_status.value == "priced"
    assert call.duration_ms == 1000.0
    assert call.attribution.project == "My Project"
    assert call.metadata == SEED_BODY["trace_metadata"]
    assert call.response_schema == SEED_BODY["response_schema"]
    assert call.content.messages == SEED_BODY["messages"] and call.content.result == "Hi!"
    rows = client.get("/v1/usage", params={"group_by": "project"}, headers=ADMIN).json()["rows"]
    assert rows[0]["project"] == "My Project" and Decimal(rows[0]["total_cost"]) == expected.total_cost


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-mini", "openai"),
        ("o3-mini", "openai"),
        ("claude-3-5-sonnet-20241022", "anthropic"),
        ("gemini-2.0-flash", "gcp.gemini"),
        ("mistral-large-latest", "mistral_ai"),
        ("deepseek-chat", "deepseek"),
        ("grok-2", "x_ai"),
        ("my-private-finetune-7b", None),
    ],
)
def test_provider_is_guessed_from_the_model(model, provider):
    assert guess_provider(model) == provider


def test_explicit_provider_and_unknown_models(client):
    body = {"model": "claude-3-5-haiku-20241022", "provider": "claude", "prompt_tokens": 100, "completion_tokens": 10}
    record = client.post("/traces", json=body, headers=ADMIN).json()
    assert record["provider"] == "anthropic" and record["cost_metrics"]["pricing_status"] == "priced"
    unknown = client.post("/traces", json={"model": "my-private-finetune-7b", "prompt_tokens": 3}, headers=ADMIN)
    assert unknown.status_code == 201
    cost = unknown.json()["cost_metrics"]
    assert cost["pricing_status"] == "unpriced" and "total_cost" not in cost  # never $0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": ""}, "model"),
        ({"prompt_tokens": -1}, "prompt_tokens"),
        ({"completion_tokens": 2.5}, "completion_tokens"),
        ({"started_at": "noon"}, "started_at"),
        ({"messages": "hello"}, "messages"),
        ({"trace_metadata": [1]}, "trace_metadata"),
        ({"colour": "blue"}, "colour"),
        ({"started_at": "2025-10-15T10:00:02Z"}, "completed_at"),  # after completed_at
    ],
)
def test_bad_traces_are_400_naming_the_field(client, change, field):
    response = client.post("/traces", json={**SEED_BODY, **change}, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["field"] == field
    assert client.get("/v1/calls", headers=ADMIN).json()["calls"] == []


def test_a_project_key_owns_its_traces(client):
    key = project_key(client.app, "team-a")
    record = client.post("/traces", json=SEED_BODY, headers=key).json()
    assert record["attribution"]["project"] == "team-a"


def test_the_sdk_client_creates_traces_over_http(client):
    with ThreadServer(client.app, lifespan="off") as server:
        sdk = Client(server.url, api_key=ADMIN["Authorization"].split()[1])
        created = sdk.create_trace(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Hi"}],
            result="Hello",
            prompt_tokens=12,
            completion_tokens=3,
            trace_metadata={"feature_flag": "v2"},
        )
        assert client.get(f"/v1/calls/{created['id']}", headers=ADMIN).json()["metadata"] == {"feature_flag": "v2"}
        with pytest.raises(TraceError) as refused:
            Client(server.url, api_key="tt_wrong-key-000000000000000000").create_trace(model="gpt-4o", messages=[])
        assert refused.value.status == 401
