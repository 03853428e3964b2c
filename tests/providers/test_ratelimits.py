"""Rate-limit, retry-after and request-id headers (PROVIDERS.md A.10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentrail.core import RateLimitInfo
from tokentrail.providers.ratelimits import parse_duration, parse_reset, parse_retry_after, read_headers

NOW = datetime(2025, 8, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1.5s", 1.5),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("8.64s", 8.64),
        ("1m6.779s", 66.779),
        ("2us", 2e-6),
        ("500µs", 5e-4),
        ("7", 7.0),  # a bare number is seconds
        ("0.25", 0.25),
    ],
)
def test_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "6m0", "m", "1s2", "-1s", "1x", "1s junk", "nan", "inf", "-3"])
def test_not_durations(text):
    assert parse_duration(text) is None


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_duration_parts_add_up(h, m, s, ms):
    text = f"{h}h{m}m{s}s" if ms == 0 else f"{h}h{m}m{s}.{ms:03d}s"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


def test_openai_headers_from_httpx2():
    headers = httpx2.Headers(
        {
            "X-RateLimit-Limit-Requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "120ms",
            "X-Request-ID": "req_1",
            "content-type": "application/json",
        }
    )
    facts = read_headers(headers, NOW)
    assert facts.request_id == "req_1"
    assert facts.rate_limits == RateLimitInfo(
        requests_limit=10000,
        requests_remaining=9999,
        requests_reset_at=NOW + timedelta(minutes=6),
        tokens_limit=30000,
        tokens_remaining=29000,
        tokens_reset_at=NOW + timedelta(milliseconds=120),
    )
    assert facts.extra is None


def test_anthropic_headers_rfc3339_and_split_limits():
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:59Z",
        "anthropic-ratelimit-tokens-limit": "90000",
        "anthropic-ratelimit-tokens-remaining": "89000",
        "anthropic-ratelimit-tokens-reset": "2025-08-21T12:41:00+00:00",
        "anthropic-ratelimit-input-tokens-limit": "80000",
        "anthropic-ratelimit-input-tokens-remaining": "79500",
        "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:30Z",
        "anthropic-ratelimit-output-tokens-remaining": "15900",
        "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    facts = read_headers(headers, NOW)
    limits = facts.rate_limits
    assert (limits.requests_limit, limits.requests_remaining) == (50, 49)
    assert limits.requests_reset_at == datetime(2025, 8, 21, 12, 40, 59, tzinfo=UTC)
    assert limits.tokens_reset_at == datetime(2025, 8, 21, 12, 41, tzinfo=UTC)
    assert facts.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert facts.extra == {
        "input_tokens_limit": 80000,
        "input_tokens_remaining": 79500,
        "input_tokens_reset_at": "2025-08-21T12:40:30+00:00",
        "output_tokens_remaining": 15900,
    }


def test_azure_remaining_only_and_apim_request_id():
    facts = read_headers(
        [
            ("x-ratelimit-remaining-requests", "99"),
            ("x-ratelimit-remaining-tokens", "9990"),
            ("apim-request-id", "a-1"),
        ],
        NOW,
    )
    assert facts.rate_limits == RateLimitInfo(requests_remaining=99, tokens_remaining=9990)
    assert facts.request_id == "a-1"


def test_request_id_preference_and_bedrock_spelling():
    assert read_headers({"apim-request-id": "b", "x-request-id": "a"}, NOW).request_id == "a"
    assert read_headers({"X-Amzn-RequestId": "aws-1"}, NOW).request_id == "aws-1"
    assert read_headers({"x-amzn-requestid": ["aws-2"]}, NOW).request_id == "aws-2"  # recordings keep lists


def test_retry_after_ms_wins_then_seconds_then_http_date():
    assert parse_retry_after("1500", "9", NOW) == 1500.0
    assert parse_retry_after(None, "9", NOW) == 9000.0
    assert parse_retry_after("junk", "2", NOW) == 2000.0
    assert parse_retry_after(None, "Thu, 21 Aug 2025 12:00:30 GMT", NOW) == 30000.0
    assert parse_retry_after(None, "Thu, 21 Aug 2025 11:00:00 GMT", NOW) == 0.0  # in the past
    assert parse_retry_after(None, "whenever", NOW) is None
    facts = read_headers({"retry-after-ms": "1", "retry-after": "1"}, NOW)
    assert facts.rate_limits == RateLimitInfo(retry_after_ms=1.0)


def test_other_ratelimit_windows_are_kept_as_extra():
    facts = read_headers(
        {
            "x-ratelimit-limit-tokens-minute": "500000",
            "x-ratelimit-remaining-tokens-month": "1000",
            "x-ratelimit-x": "n/a",
        },
        NOW,
    )
    assert facts.rate_limits is None
    assert facts.extra == {"ratelimit_limit_tokens_minute": 500000, "ratelimit_remaining_tokens_month": 1000}


@pytest.mark.parametrize(
    "headers",
    [
        {
            "x-ratelimit-limit-requests": "-3",
            "x-ratelimit-reset-requests": "later",
            "x-ratelimit-remaining-tokens": "²",
        },
        {"x-ratelimit-limit-requests": "1.5"},
        {"anthropic-ratelimit-requests-reset": "not a time"},
        None,
        42,
        [("x-request-id",)],
    ],
)
def test_malformed_headers_are_skipped(headers):
    facts = read_headers(headers, NOW)
    assert facts.rate_limits is None and facts.extra is None


def test_reset_time_is_absolute_utc():
    assert parse_reset("1h", NOW) == NOW + timedelta(hours=1)
    assert parse_reset("2025-08-21T14:00:00+02:00", NOW) == datetime(2025, 8, 21, 12, tzinfo=UTC)
    assert parse_reset("2025-08-21T12:00:00", NOW).tzinfo is UTC
