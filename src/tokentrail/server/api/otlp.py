"""`POST /v1/traces`: OTLP/HTTP trace export. GenAI spans become priced call records.

Protobuf (`application/x-protobuf`) or OTLP JSON (`application/json`), optionally
`Content-Encoding: gzip`, within the server's body limit, under API-key auth like every
endpoint. The answer is an `ExportTraceServiceResponse` in the request's encoding, sent after
the records are committed. GenAI spans that cannot be recorded (an impossible token count,
ids of the wrong size) are counted in `partial_success.rejected_spans` with the reasons in
`error_message`; other spans (HTTP, database, framework spans) are accepted and ignored, and
counted in the app's `otlp_counters`. A body that is not an export request answers 400 with a
`google.rpc.Status` (JSON: `{code, message, detail: [{field, reason}]}`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tokentrail.core import ValidationError
from tokentrail.server.alerts.service import records_stored
from tokentrail.server.api.deps import database, require_principal, settings
from tokentrail.server.api.errors import ApiError
from tokentrail.server.api.ingest import read_body
from tokentrail.server.api.traces import guess_provider
from tokentrail.server.auth import Principal
from tokentrail.server.db.calls import Row, call_row, store_rows
from tokentrail.server.db.engine import Database
from tokentrail.server.metrics import INGEST_STATE_KEY
from tokentrail.server.otlp.decode import (
    OtlpFormat,
    decode_request,
    encode_response,
    encode_status,
    iter_spans,
    otlp_format,
)
from tokentrail.server.otlp.genai_map import span_to_call
from tokentrail.server.otlp.stats import otlp_counters
from tokentrail.server.settings import ServerSettings

router = APIRouter(tags=["otlp"])
logger = logging.getLogger("tokentrail.server")
MAX_REASONS = 10  # rejected spans described in one partial_success message


@dataclass(frozen=True, slots=True)
class ExportResult:
    spans: int
    stored: int
    duplicates: int
    ignored: int
    rejected: int
    message: str


def export(db: Database, body: bytes, fmt: OtlpFormat, principal: Principal) -> ExportResult:
    """Decode, map and store one export request (ValidationError for a malformed body)."""
    request = decode_request(body, fmt)
    project = None if principal.admin else principal.project
    rows: list[Row] = []
    reasons: list[str] = []
    spans = ignored = 0
    for index, span in enumerate(iter_spans(request)):
        spans += 1
        try:
            call = span_to_call(span, project=project, guess=guess_provider)
            if call is None:
                ignored += 1
                continue
            rows.append(call_row(call))
        except ValidationError as exc:
            reasons.append(f"span {index} ({span.trace_id.hex()}/{span.span_id.hex()}) {exc.field}: {exc.reason}")
    stored = duplicates = 0
    if rows:
        with db.write() as conn:
            stored, duplicates = store_rows(conn, rows)
    message = ""
    if reasons:
        more = f"; and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS else ""
        message = (
            f"{len(reasons)} GenAI span(s) rejected: {'; '.join(reasons[:MAX_REASONS])}{more}"
            f" ({ignored} span(s) without GenAI attributes ignored)"
        )
        logger.warning("tokentrail: OTLP export: %s", message)
    logger.debug(
        "tokentrail: OTLP export: %d spans, %d stored, %d duplicates, %d ignored, %d rejected",
        spans, stored, duplicates, ignored, len(reasons),
    )  # fmt: skip
    return ExportResult(spans, stored, duplicates, ignored, len(reasons), message)


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {
                "schema": {"type": "string", "format": "binary", "description": "ExportTraceServiceRequest"}
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "ExportTraceServiceRequest in the OTLP JSON mapping (hex ids, camelCase)",
                    "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
                }
            },
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "ExportTraceServiceResponse, in the request's encoding",
        "content": {"application/x-protobuf": {}, "application/json": {}},
    },
    400: {"description": "not an export request (google.rpc.Status)"},
    413: {"description": "body too large"},
    415: {"description": "Content-Type or Content-Encoding not supported"},
}


def _bad_request(fmt: OtlpFormat, detail: list[dict[str, str]]) -> Response:
    message = "; ".join(f"{item['field']}: {item['reason']}" for item in detail)
    return Response(encode_status(fmt, message, detail), status_code=400, media_type=fmt.value)


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export: GenAI spans become priced call records",
    openapi_extra=_BODY,
    responses=_RESPONSES,
    response_class=Response,
)
async def post_otlp_traces(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    config: Annotated[ServerSettings, Depends(settings)],
) -> Response:
    fmt = otlp_format(request.headers.get("content-type"))
    if fmt is None:
        raise ApiError(415, "Content-Type must be application/x-protobuf or application/json (OTLP/HTTP)")
    try:
        body = await read_body(request, config.max_body_bytes)
    except ApiError as exc:
        if exc.status == 400 and isinstance(exc.detail, list):
            return _bad_request(fmt, exc.detail)
        raise
    try:
        result = await run_in_threadpool(export, db, body, fmt, principal)
    except ValidationError as exc:
        return _bad_request(fmt, [{"field": exc.field, "reason": exc.reason}])
    # what GET /metrics counts as records of this ingest request
    counts = {"accepted": result.stored, "duplicates": result.duplicates, "rejected": result.rejected}
    setattr(request.state, INGEST_STATE_KEY, counts)
    if result.stored:  # committed: budgets and alert rules are evaluated on another thread
        records_stored(request.app, None if principal.admin else principal.project)
    otlp_counters(request.app).add(
        requests=1,
        spans_received=result.spans,
        calls_stored=result.stored,
        duplicates=result.duplicates,
        spans_ignored=result.ignored,
        spans_rejected=result.rejected,
    )
    return Response(encode_response(fmt, result.rejected, result.message), media_type=fmt.value)


__all__ = ["ExportResult", "export", "router"]
