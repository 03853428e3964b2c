"""Storing and reading calls.

`store_calls(conn, calls)` is the one ingest path (SDK batches, R4U traces, OTLP spans): it
inserts the records not stored yet and adds exactly those to the rollups, in the caller's
transaction, and returns `(accepted, duplicates)`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tokentrail.core import LLMCall, ValidationError
from tokentrail.core.columns import COLUMN_NAMES, MAX_PICO, TABLE, TOKEN_COLUMNS, record_to_row
from tokentrail.server import jsonio
from tokentrail.server.db import dialect, rollups
from tokentrail.server.db.filters import CallFilter, call_conditions
from tokentrail.server.db.models import ROLLED_UP, calls

INSERT_COLUMNS: tuple[str, ...] = (*COLUMN_NAMES, ROLLED_UP)

Row = tuple[Any, ...]


# An escaped NUL inside a JSON string (not an escaped backslash followed by "u0000").
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_RECORD = COLUMN_NAMES.index("record")
_NO_DATA: dict[str, Any] = {}
_BIGINTS = tuple((name, COLUMN_NAMES.index(name)) for name in TOKEN_COLUMNS)
_ATTEMPT = COLUMN_NAMES.index("attempt")
_MAX_INT32 = 2**31 - 1


def call_row(call: LLMCall, data: dict[str, Any] | None = None) -> Row:
    """The stored row of one call (COLUMN_NAMES order, then `rolled_up` = 1: ingest adds it
    to the rollups itself). Raises ValidationError for a value the table cannot hold.

    `data` is the JSON object `call` was validated from (`LLMCall.from_dict(data)`): the
    record column then holds it as sent, less top-level nulls, which saves rebuilding
    `call.to_dict()` on the ingest path (the SDK sends exactly that form anyway).
    """
    if data is None:
        row = record_to_row(call)
        text = row[_RECORD]
    else:
        row = record_to_row(call, _NO_DATA)
        if None in data.values():
            data = {k: v for k, v in data.items() if v is not None}
        text = jsonio.dumps(data)
        row = (*row[:_RECORD], text, *row[_RECORD + 1 :])
    if "\\u0000" in text and _NUL.search(text):
        # PostgreSQL text and JSONB cannot hold NUL; refuse it on every database alike.
        raise ValidationError("record", "contains a NUL character (\\u0000), which cannot be stored")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValidationError("record", "contains an unpaired UTF-16 surrogate, which cannot be stored") from None
    for name, index in _BIGINTS:
        if row[index] is not None and row[index] > MAX_PICO:
            raise ValidationError(f"token_usage.{name}", f"{row[index]} is over the storable maximum (2**63 - 1)")
    if row[_ATTEMPT] is not None and row[_ATTEMPT] > _MAX_INT32:
        raise ValidationError("attempt", f"{row[_ATTEMPT]} is over the storable maximum (2**31 - 1)")
    return (*row, 1)


def store_rows(conn: Connection, rows: Sequence[Row], deltas: rollups.Deltas | None = None) -> tuple[int, int]:
    """Insert `call_row` rows; returns (accepted, duplicates). Within one batch the first row
    of an id wins and later ones count as duplicates.

    `deltas` may pass `rollups.accumulate` of all `rows`, computed before the transaction
    (outside SQLite's write lock); it is used when every row turned out new."""
    unique: dict[str, Row] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    inserted = dialect.insert_new(conn, TABLE, INSERT_COLUMNS, list(unique.values()))
    if inserted:
        if deltas is None or len(inserted) != len(rows):
            new = (rollups.source_of_row(row) for row in unique.values() if row[0] in inserted)
            deltas = rollups.accumulate(new)
        rollups.apply(conn, deltas)
    return len(inserted), len(rows) - len(inserted)


def store_calls(conn: Connection | Session, records: Sequence[LLMCall]) -> tuple[int, int]:
    """Store validated records in the current transaction; returns (accepted, duplicates).

    A record the table cannot hold raises ValidationError naming `calls[i].<field>` and
    nothing is stored (the caller's transaction rolls back)."""
    if isinstance(conn, Session):
        conn = conn.connection()
    rows = []
    for i, call in enumerate(records):
        try:
            rows.append(call_row(call))
        except ValidationError as exc:
            raise exc.prefixed(f"calls[{i}]") from None
    return store_rows(conn, rows)


# ---- reading ------------------------------------------------------------------------------
def encode_cursor(started_at: int, call_id: str) -> str:
    raw = json.dumps([started_at, call_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, call_id = json.loads(raw)
        if isinstance(started_at, bool) or not isinstance(started_at, int) or not isinstance(call_id, str):
            raise ValueError
        if abs(started_at) > MAX_PICO or "\x00" in call_id:
            raise ValueError
    except (ValueError, TypeError):
        raise ValidationError("cursor", "is not a cursor this server issued") from None
    return started_at, call_id


def list_calls(
    conn: Connection, flt: CallFilter, *, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by (started_at, id); `next_cursor` continues after the last one returned.
    Stable under concurrent inserts: a page never repeats or skips a call older than the cursor."""
    query = sa.select(calls.c.started_at, calls.c.id, calls.c.record).where(*call_conditions(flt))
    if cursor is not None:
        started_at, call_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(calls.c.started_at < started_at, sa.and_(calls.c.started_at == started_at, calls.c.id < call_id))
        )
    query = query.order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(limit + 1)
    rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    records = [dialect.record_dict(row.record) for row in rows]
    next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id) if more and rows else None
    return records, next_cursor


def get_call(conn: Connection, call_id: str, *, project: str | None = None) -> dict[str, Any] | None:
    """One record, or None when absent or (with `project`) in another project."""
    query = sa.select(calls.c.record).where(calls.c.id == call_id)
    if project is not None:
        query = query.where(calls.c.project == project)
    value = conn.execute(query).scalar_one_or_none()
    return None if value is None else dialect.record_dict(value)


__all__ = [
    "INSERT_COLUMNS",
    "call_row",
    "decode_cursor",
    "encode_cursor",
    "get_call",
    "list_calls",
    "store_calls",
    "store_rows",
]
