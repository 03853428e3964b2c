"""`POST /v1/calls`: batch ingest from the SDK's collector sink.

Body `{"calls": [record, ...]}` (JSON, optionally `Content-Encoding: gzip`), at most
`max_body_bytes` both as sent and decompressed (413 beyond). Every record is validated with
`LLMCall.from_dict` before anything is written: one bad record answers 400 listing
`calls[i].<field>` and the reason, and nothing of the request is stored. Records are stored
once per id (`{"accepted": new, "duplicates": already stored}`), and the answer is sent only
after the transaction committed. A project key puts every record in its project.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tokentrail.core import LLMCall, ValidationError
from tokentrail.server import jsonio
from tokentrail.server.alerts.service import records_stored
from tokentrail.server.api.deps import database, require_principal, settings
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db import rollups
from tokentrail.server.db.calls import Row, call_row, store_rows
from tokentrail.server.db.engine import Database
from tokentrail.server.settings import ServerSettings

router = APIRouter(tags=["ingest"])
MAX_ERRORS = 50  # field errors listed in one answer


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refusing more than `limit` bytes either way."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ApiError.field("Content-Length", "is not a number")
        if int(length) > limit:
            raise ApiError(413, f"the body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return gunzip(body, limit)
    if encoding not in ("identity", ""):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    return body


def gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError.field("body", f"is not valid gzip: {exc}") from None
    if len(data) > limit or decompressor.unconsumed_tail:
        raise ApiError(413, f"the decompressed body is over the {limit}-byte limit")
    if not decompressor.eof:
        raise ApiError.field("body", "is truncated gzip")
    return data


def parse_records(body: bytes) -> list[Any]:
    try:
        payload = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.field("body", f"is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError.field("body", f"must be an object with a 'calls' list, got {type(payload).__name__}")
    records = payload.get("calls")
    if records is None:
        raise ApiError.field("calls", "is required")
    if not isinstance(records, list):
        raise ApiError.field("calls", f"must be a list, got {type(records).__name__}")
    return records


def in_project(data: Any, project: str) -> Any:
    """The record with `attribution.project` set to the key's project."""
    if not isinstance(data, dict):
        return data
    attribution = data.get("attribution")
    if attribution is None:
        attribution = {}
    if not isinstance(attribution, dict):
        return data  # from_dict reports it
    return {**data, "attribution": {**attribution, "project": project}}


def validate(records: list[Any], project: str | None) -> list[Row]:
    """Rows for every record, or ApiError(400) listing the bad ones."""
    rows: list[Row] = []
    errors: list[dict[str, str]] = []
    for i, data in enumerate(records):
        try:
            if project is not None:
                data = in_project(data, project)
            rows.append(call_row(LLMCall.from_dict(data), data))
        except ValidationError as exc:
            errors.append({"field": f"calls[{i}].{exc.field}", "reason": exc.reason})
        except (TypeError, ValueError, KeyError) as exc:
            errors.append({"field": f"calls[{i}]", "reason": str(exc)})
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ApiError(400, errors)
    return rows


def ingest(db: Database, body: bytes, principal: Principal) -> dict[str, int]:
    rows = validate(parse_records(body), None if principal.admin else principal.project)
    if not rows:
        return {"accepted": 0, "duplicates": 0}
    deltas = rollups.accumulate(map(rollups.source_of_row, rows))  # before taking the write lock
    with db.write() as conn:
        accepted, duplicates = store_rows(conn, rows, deltas)
    return {"accepted": accepted, "duplicates": duplicates}


@router.post(
    "/v1/calls",
    summary="Store a batch of call records (idempotent on id)",
    responses={400: {"description": "a record is invalid; nothing stored"}, 413: {"description": "body too large"}},
)
async def post_calls(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    config: Annotated[ServerSettings, Depends(settings)],
) -> JSONResponse:
    body = await read_body(request, config.max_body_bytes)
    answer = await run_in_threadpool(ingest, db, body, principal)
    if answer["accepted"]:  # committed: budgets and alert rules are evaluated on another thread
        records_stored(request.app, None if principal.admin else principal.project)
    return JSONResponse(answer)
