"""schemathesis over the collector's OpenAPI schema finds no 5xx (issue 5), on SQLite and
PostgreSQL.

Every operation the running app publishes is exercised, so endpoints added later are covered
without touching this file, against a live uvicorn on 127.0.0.1:
- schema-valid and schema-violating inputs (schemathesis positive and negative generation)
  with an admin key, checked with `not_a_server_error`;
- a few cases with the Authorization header generated too (missing, malformed, unknown keys);
- for a POST/PUT/PATCH that declares no request body (it reads the raw body itself), generated
  JSON bodies built from the schema's own property names, and bytes that are not JSON.
Examples are bounded and derandomised, so the run is fast and repeatable; failures of every
operation are collected and reported together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from server_helpers import ADMIN, ThreadServer

from tokentrail.server import ServerSettings, create_app

POSITIVE, NEGATIVE, UNAUTHENTICATED, RAW_BODY = 25, 15, 4, 25  # examples per operation
_SETTINGS = hypothesis_settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)
# Values that have broken parsers before: huge and negative numbers, NUL, odd times and amounts.
_AWKWARD = st.sampled_from(
    [0, -1, 2**31, 2**63, 2**70, 1e308, -0.0, "", "\x00", "nan", "1e999", "-5", "2025-10-15T10:00:00Z",
     "9999-12-31", "gpt-4o", "openai", "chat", "day", "ok", "USD", "0.01"]
)  # fmt: skip


def _property_names(node: Any, names: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            _property_names(value, names)
    elif isinstance(node, list):
        for item in node:
            _property_names(item, names)
    return names


def json_bodies(vocabulary: list[str]) -> st.SearchStrategy[bytes]:
    """JSON documents keyed with the schema's property names (and the record's), and non-JSON."""
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | _AWKWARD
    keys = st.sampled_from(vocabulary) | st.text(max_size=10)
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=25,
    )
    documents = st.dictionaries(keys, values, max_size=8) | st.builds(
        lambda v: {"calls": v}, st.lists(values, max_size=3)
    )
    return st.one_of(documents.map(lambda doc: json.dumps(doc).encode()), st.binary(max_size=64))


@pytest.fixture
def live_url(settings: ServerSettings) -> Iterator[str]:
    with ThreadServer(create_app(settings)) as server:
        yield server.url


def exercise(
    operation: Any, base_url: str, mode: GenerationMode, examples: int, headers: dict[str, str] | None
) -> None:
    @hypothesis_settings(_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    run()


# Sent once per operation besides the generated ones: bodies that have crashed parsers.
FIXED_BODIES = (
    b"",
    b"null",
    b"\xff\xfe{",  # not UTF-8
    b"[" * 100_000,  # deeper than the interpreter's stack
    b'{"calls": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"calls": [{"id": "x", "operation": "chat", "started_at": "2025-10-15T10:00:00Z", "metadata": '
    + b'{"a": ' * 900
    + b"1"
    + b"}" * 900
    + b"}]}",
)


def exercise_raw_body(operation: Any, base_url: str, bodies: st.SearchStrategy[bytes]) -> None:
    fixed = list(FIXED_BODIES)

    @hypothesis_settings(_SETTINGS, max_examples=RAW_BODY)
    @given(case=operation.as_strategy(headers=ADMIN), body=bodies)
    def run(case: schemathesis.Case, body: bytes) -> None:
        request = case.as_transport_kwargs(base_url=base_url)
        request["headers"]["Content-Type"] = "application/json"
        for data in [body, *fixed]:
            response = requests.request(**request, data=data, timeout=30)
            assert response.status_code < 500, (
                f"{request['method']} {request['url']} with {data[:300]!r} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        fixed.clear()

    run()


def test_no_operation_answers_a_server_error(live_url):
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = []
    problems: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, schemathesis.core.result.Err):
            problems.append(f"schema: {result.err()}")
        else:
            operations.append(result.ok())
    assert {op.path for op in operations} >= {"/v1/calls", "/v1/usage", "/v1/traces", "/traces"}
    vocabulary = sorted(_property_names(schema.raw_schema, {"calls", "id", "operation", "started_at", "model"}))
    bodies = json_bodies(vocabulary)
    for operation in operations:
        runs = [
            ("positive", lambda op: exercise(op, live_url, GenerationMode.POSITIVE, POSITIVE, ADMIN)),
            ("negative", lambda op: exercise(op, live_url, GenerationMode.NEGATIVE, NEGATIVE, ADMIN)),
            ("any key", lambda op: exercise(op, live_url, GenerationMode.POSITIVE, UNAUTHENTICATED, None)),
        ]
        if operation.method.upper() in ("POST", "PUT", "PATCH") and "requestBody" not in operation.definition.raw:
            runs.append(("raw body", lambda op: exercise_raw_body(op, live_url, bodies)))
        for name, run in runs:
            try:
                run(operation)
            except Unsatisfiable:
                pass  # no such input exists (e.g. no invalid input for an operation without parameters)
            except (Exception, BaseExceptionGroup) as exc:  # collected: every operation is tried first
                problems.append(f"{operation.method.upper()} {operation.path} ({name}):\n{exc}")
    assert not problems, "\n\n".join(problems)
