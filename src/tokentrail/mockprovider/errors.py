"""Error answers in each provider's real shape.

- OpenAI: `{"error": {"message", "type", "param", "code"}}`; a 429 carries `retry-after-ms`
  (which the SDK reads first) and `retry-after`.
- Azure: `{"error": {"code", "message"}}` with `retry-after-ms` / `retry-after` on 429.
- Anthropic: `{"type": "error", "error": {"type", "message"}, "request_id"}`; `retry-after` on
  429 (whole seconds; fractional only when the mock is told to wait less than a second, which
  the SDK accepts); overloaded is HTTP 529.
- Gemini: `{"error": {"code", "message", "status"}}`; a 429 is `RESOURCE_EXHAUSTED` with
  `details[].retryDelay` and no headers.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tokentrail.mockprovider.exchange import MockError, MockRequest, Reply

# kind -> HTTP status per provider family (overloaded: Anthropic's 529, 503 elsewhere)
_STATUS: dict[str, int] = {
    "rate_limit": 429,
    "server_error": 500,
    "overloaded": 503,
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
}

_OPENAI: dict[str, tuple[str, str | None, str]] = {  # kind -> (type, code, default message)
    "rate_limit": ("requests", "rate_limit_exceeded", ""),
    "server_error": (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "overloaded": ("server_error", None, "The server is overloaded or not ready yet."),
    "bad_request": ("invalid_request_error", None, "Invalid request."),
    "unauthorized": (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    "not_found": ("invalid_request_error", "model_not_found", ""),
}

_ANTHROPIC: dict[str, tuple[str, str]] = {  # kind -> (error type, default message)
    "rate_limit": ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    "server_error": ("api_error", "Internal server error"),
    "overloaded": ("overloaded_error", "Overloaded"),
    "bad_request": ("invalid_request_error", "Invalid request."),
    "unauthorized": ("authentication_error", "invalid x-api-key"),
    "not_found": ("not_found_error", ""),
}

_GEMINI: dict[str, tuple[str, str]] = {  # kind -> (status, default message)
    "rate_limit": (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "server_error": (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    "overloaded": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    "bad_request": ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    "unauthorized": ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    "not_found": ("NOT_FOUND", ""),
}


def status_of(provider: str, kind: str) -> int:
    if kind == "overloaded" and provider == "anthropic":
        return 529
    return _STATUS[kind]


def seconds_text(seconds: float) -> str:
    """Seconds for `retry-after` / `retryDelay`: whole seconds (rounded up) from one second on, as
    the providers send them; below a second (a mock told to wait briefly) up to three decimals."""
    if seconds >= 1 or seconds <= 0:
        return str(max(0, math.ceil(seconds)))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def error_reply(request: MockRequest, error: MockError, retry_after_s: float) -> Reply:
    """The error answer for `request`; `retry_after_s` is advertised on 429s."""
    provider, kind = request.provider, error.kind
    status = status_of(provider, kind)
    headers: list[tuple[str, str]] = []
    body: dict[str, Any]
    if provider == "anthropic":
        kind_type, default = _ANTHROPIC[kind]
        message = error.message or default or f"model: {request.model}"
        body = {"type": "error", "error": {"type": kind_type, "message": message}, "request_id": request.request_id}
        headers.append(("request-id", request.request_id))
        if kind == "rate_limit":
            headers.append(("retry-after", seconds_text(retry_after_s)))
        if status >= 500 or kind == "rate_limit":
            headers.append(("x-should-retry", "true"))
    elif provider == "gemini":
        google_status, default = _GEMINI[kind]
        message = error.message or default or f"models/{request.model} is not found for API version v1beta."
        inner: dict[str, Any] = {"code": status, "message": message, "status": google_status}
        if kind == "rate_limit":
            inner["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaDimensions": {"location": "global", "model": request.model},
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds_text(retry_after_s)}s"},
            ]
        body = {"error": inner}
    else:
        openai_type, code, default = _OPENAI[kind]
        message = error.message or default or _openai_default(request, kind, error, retry_after_s)
        if provider == "azure":
            body = {"error": {"code": code or str(status), "message": message}}
            headers.append(("apim-request-id", request.request_id))
        else:
            body = {"error": {"message": message, "type": openai_type, "param": error.param, "code": code}}
            headers.append(("x-request-id", request.request_id))
        if kind == "rate_limit":
            headers.append(("retry-after-ms", str(max(0, round(retry_after_s * 1000)))))
            headers.append(("retry-after", str(max(0, math.ceil(retry_after_s)))))
    return Reply(status, json.dumps(body).encode(), headers)


def _openai_default(request: MockRequest, kind: str, error: MockError, retry_after_s: float) -> str:
    if kind == "not_found":
        return f"The model `{request.model}` does not exist or you do not have access to it."
    detail = error.limit_detail or "requests per min (RPM)"
    wait = f"{round(retry_after_s * 1000)}ms" if retry_after_s < 1 else f"{retry_after_s:.3f}s"
    return (
        f"Rate limit reached for {request.model} in organization org-mock on {detail}. "
        f"Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
