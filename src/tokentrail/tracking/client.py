"""`Client`: the R4U manual client. `create_trace(...)` posts one trace to `{api_url}/traces`
(the collector's R4U endpoint) and returns what the server created.

Unlike the telemetry hooks this is an explicit request the caller asked for, so failures
raise `TraceError` (with the HTTP status and the server's message) instead of being swallowed.
Standard library only (urllib): no extra dependency for a single POST.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tokentrail.core import TokentrailError, ValidationError
from tokentrail.core.fields import time_to_json
from tokentrail.tracking import clock as _clock
from tokentrail.tracking.operation import jsonable


class TraceError(TokentrailError):
    """The trace server refused the trace or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _time(field: str, value: datetime | str | None, default: datetime) -> str:
    if value is None:
        return time_to_json(default)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime or ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return time_to_json(value)


def _count(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(field, f"must be a non-negative integer, got {value!r}")
    return value


class Client:
    """R4U-style trace client: `Client(api_url, api_key).create_trace(model=, messages=, ...)`."""

    def __init__(self, api_url: str, api_key: str | None = None, *, timeout: float = 10.0) -> None:
        if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
            raise ValidationError("api_url", f"must be an http(s) URL, got {api_url!r}")
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def create_trace(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        result: str | None = None,
        started_at: datetime | str | None = None,
        completed_at: datetime | str | None = None,
        project: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        total_tokens: int | None = None,
        response_schema: Mapping[str, Any] | None = None,
        trace_metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST the trace; returns the server's JSON answer (the created trace or an ack)."""
        if not isinstance(model, str) or not model:
            raise ValidationError("model", "must be a non-empty string")
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise ValidationError("messages", "must be a list of message objects")
        now = _clock.get_clock().now()
        done = _time("completed_at", completed_at, now)
        body: dict[str, Any] = {
            "model": model,
            "messages": jsonable(list(messages)),
            "result": result,
            "started_at": _time("started_at", started_at, datetime.fromisoformat(done.replace("Z", "+00:00"))),
            "completed_at": done,
            "project": project,
            "prompt_tokens": _count("prompt_tokens", prompt_tokens),
            "completion_tokens": _count("completion_tokens", completion_tokens),
            "total_tokens": _count("total_tokens", total_tokens),
            "response_schema": jsonable(response_schema) if response_schema is not None else None,
            "trace_metadata": jsonable(trace_metadata) if trace_metadata is not None else None,
        }
        if body["total_tokens"] is None and prompt_tokens is not None and completion_tokens is not None:
            body["total_tokens"] = prompt_tokens + completion_tokens
        payload = {k: v for k, v in body.items() if v is not None}
        return self._post("/traces", payload)

    def _post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.api_url + path, data=data, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace") if exc.fp is not None else ""
            raise TraceError(f"{path} answered {exc.code}: {text[:500]}", status=exc.code, body=text) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TraceError(f"cannot reach {self.api_url}: {reason}") from None
        if not raw.strip():
            return {}
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            raise TraceError(f"{path} answered with non-JSON: {raw[:200]!r}", body=raw) from None
        return answer if isinstance(answer, dict) else {"result": answer}


__all__ = ["Client", "TraceError"]
