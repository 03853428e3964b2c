"""`POST /traces`: the R4U trace body (seed 000) becomes one priced call record.

Fields: model (required), messages, result, started_at, completed_at, project,
prompt_tokens, completion_tokens, total_tokens, response_schema, trace_metadata, and an
optional provider (otherwise guessed from the model name). Messages and result were sent
on purpose, so they are kept as the record's `content`. Answers 201 with the stored record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tokentrail.core import (
    Attribution,
    Content,
    CostBreakdown,
    LLMCall,
    ModelOperation,
    PricingStatus,
    TokenUsage,
    ValidationError,
    normalize_provider,
)
from tokentrail.core.fields import as_dict, as_str, as_time
from tokentrail.core.usage import check_count
from tokentrail.pricing import PROVIDER_IDS, calculate_cost, default_engine, price_version
from tokentrail.server import jsonio
from tokentrail.server.api.deps import database, require_principal, settings
from tokentrail.server.api.ingest import read_body
from tokentrail.server.auth import Principal
from tokentrail.server.db.calls import call_row, store_rows
from tokentrail.server.db.engine import Database
from tokentrail.server.settings import ServerSettings

router = APIRouter(tags=["r4u"])

TRACE_FIELDS = frozenset(
    {
        "model",
        "provider",
        "messages",
        "result",
        "started_at",
        "completed_at",
        "project",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "response_schema",
        "trace_metadata",
    }
)
# Model-name prefixes that identify a provider without a catalog look-up.
_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("gpt-", "chatgpt", "o1", "o3", "o4", "text-embedding", "davinci", "babbage", "whisper", "tts-", "dall-e"),
        "openai",
    ),
    (("claude",), "anthropic"),
    (("gemini",), "gcp.gemini"),
    (("mistral", "mixtral", "codestral", "magistral", "pixtral", "ministral"), "mistral_ai"),
    (("command", "embed-english", "embed-multilingual", "rerank-"), "cohere"),
    (("deepseek",), "deepseek"),
    (("grok",), "x_ai"),
)
_FROM_CATALOG_ID = {catalog_id: name for name, catalog_id in reversed(PROVIDER_IDS.items()) if catalog_id}


def guess_provider(model: str) -> str | None:
    """The provider a model name belongs to: well-known prefixes, then the price catalog."""
    name = model.strip().lower()
    for prefixes, provider in _PREFIXES:
        if name.startswith(prefixes):
            return provider
    match = default_engine().catalog.find("", name)
    if match is None:
        return None
    return _FROM_CATALOG_ID.get(match.provider.id, match.provider.id)


def trace_to_call(body: Any, project: str | None = None, *, now: datetime | None = None) -> LLMCall:
    """The record for one R4U trace body; `project` (a project key's) overrides the body's."""
    if not isinstance(body, dict):
        raise ValidationError("body", f"must be an object, got {type(body).__name__}")
    unknown = sorted(set(body) - TRACE_FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a trace field")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise ValidationError("model", "is required (a non-empty string)")
    model = body["model"]
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise ValidationError("messages", "must be a list of messages")
    result = body.get("result")
    completed = as_time("completed_at", body["completed_at"]) if body.get("completed_at") is not None else None
    started = as_time("started_at", body["started_at"]) if body.get("started_at") is not None else None
    completed = completed or started or now or datetime.now(UTC)
    started = started or completed
    counts = {
        name: check_count(name, body.get(name)) for name in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    usage = None
    if any(v is not None for v in counts.values()):
        try:
            usage = TokenUsage.build(
                input_tokens=counts["prompt_tokens"],
                output_tokens=counts["completion_tokens"],
                total_tokens=counts["total_tokens"],
            )
        except ValidationError as exc:
            raise ValidationError("total_tokens", exc.reason) from None
    provider = (
        normalize_provider(as_str("provider", body["provider"])) if body.get("provider") else guess_provider(model)
    )
    if provider is None:
        cost = CostBreakdown(
            pricing_status=PricingStatus.UNPRICED,
            price_version=price_version(),
            reason=f"no provider given and none is known for model {model!r}",
        )
    else:
        cost = calculate_cost(provider, model, usage, at=started)
    owner = project if project is not None else (as_str("project", body["project"]) if body.get("project") else None)
    return LLMCall.new(
        ModelOperation.CHAT,
        started_at=started,
        completed_at=completed,
        provider=provider,
        request_model=model,
        token_usage=usage,
        cost_metrics=cost,
        attribution=Attribution(project=owner) if owner else None,
        metadata=as_dict("trace_metadata", body["trace_metadata"]) if body.get("trace_metadata") is not None else None,
        response_schema=as_dict("response_schema", body["response_schema"])
        if body.get("response_schema") is not None
        else None,
        content=Content(messages=messages, result=result) if messages is not None or result is not None else None,
    )


def create_trace(db: Database, body: bytes, principal: Principal) -> dict[str, Any]:
    try:
        payload = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None
    call = trace_to_call(payload, None if principal.admin else principal.project)
    row = call_row(call)
    with db.write() as conn:
        store_rows(conn, [row])
    return call.to_dict()


@router.post("/traces", status_code=201, summary="Store one R4U trace as a priced call record")
async def post_trace(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    config: Annotated[ServerSettings, Depends(settings)],
) -> JSONResponse:
    body = await read_body(request, config.max_body_bytes)
    record = await run_in_threadpool(create_trace, db, body, principal)
    return JSONResponse(record, status_code=201)
