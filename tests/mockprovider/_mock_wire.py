"""Helpers for the mock-provider tests: raw HTTP and the extraction cross-check."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tokentrail.mockprovider import Usage

# Short waits keep retry tests fast; the SDKs honour them (retry-after-ms / fractional retry-after).
RETRY_AFTER_MS = 20


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw POST (the wire as it is, without an SDK in between)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def assert_extracted(extracted: Any, intended: Usage | None) -> None:
    """tokentrail's extraction of what the mock sent equals what the mock meant to bill."""
    assert intended is not None and extracted is not None
    assert extracted.input_tokens == intended.input_tokens
    assert extracted.output_tokens == intended.output_tokens
    assert (extracted.cache_read_tokens or 0) == intended.cache_read_tokens
    assert (extracted.cache_write_tokens or 0) == intended.cache_write_tokens
    assert (extracted.reasoning_tokens or 0) == intended.reasoning_tokens
