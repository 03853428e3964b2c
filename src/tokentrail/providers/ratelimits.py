"""Rate-limit, retry-after and request-id response headers of every provider (PROVIDERS.md A.10).

One pass over the headers gives `HeaderFacts`: a `RateLimitInfo` with numbers and absolute UTC
reset times, the provider's request id, and the limits `RateLimitInfo` has no field for.

- OpenAI (and Groq, Together, Azure...): `x-ratelimit-{limit,remaining}-{requests,tokens}` and
  `x-ratelimit-reset-{requests,tokens}` as Go durations (`6m0s`, `1.5s`, `120ms`, `1h2m3.5s`,
  `0s`; a bare number is seconds). Azure sends the `remaining` pair only.
- Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
  resets in RFC 3339; the input/output-token limits go to `extra`.
- 429s: `retry-after-ms` first (as the OpenAI SDK reads it), then `retry-after` in seconds or
  as an HTTP date.
- Request ids: `x-request-id`, `request-id`, `apim-request-id`, `x-amzn-requestid` (first found
  in that order of preference).

Headers may be an httpx/httpx2 `Headers`, any mapping (keys of any case), or a list of pairs.
Malformed values are skipped, never raised: this runs inside the host's call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from tokentrail.core.sections import RateLimitInfo

REQUEST_ID_HEADERS: tuple[str, ...] = ("x-request-id", "request-id", "apim-request-id", "x-amzn-requestid")

_OPENAI_PREFIX = "x-ratelimit-"
_ANTHROPIC_PREFIX = "anthropic-ratelimit-"
# suffix after the prefix -> RateLimitInfo field (numbers) or the reset-time field
_OPENAI_FIELDS: dict[str, str] = {
    "limit-requests": "requests_limit",
    "remaining-requests": "requests_remaining",
    "reset-requests": "requests_reset_at",
    "limit-tokens": "tokens_limit",
    "remaining-tokens": "tokens_remaining",
    "reset-tokens": "tokens_reset_at",
}
_ANTHROPIC_FIELDS: dict[str, str] = {
    "requests-limit": "requests_limit",
    "requests-remaining": "requests_remaining",
    "requests-reset": "requests_reset_at",
    "tokens-limit": "tokens_limit",
    "tokens-remaining": "tokens_remaining",
    "tokens-reset": "tokens_reset_at",
}
_RESETS = frozenset({"requests_reset_at", "tokens_reset_at"})
_RELEVANT_PREFIXES = (_OPENAI_PREFIX, _ANTHROPIC_PREFIX, "retry-after")
_RELEVANT_BYTES = tuple(p.encode() for p in _RELEVANT_PREFIXES) + tuple(h.encode() for h in REQUEST_ID_HEADERS)
_FIRST_BYTES = frozenset(p[0] for p in _RELEVANT_BYTES)  # first byte: a cheap test before the prefix test
# full header name -> RateLimitInfo field
_FIELD_OF: dict[str, str] = {
    **{_OPENAI_PREFIX + suffix: field for suffix, field in _OPENAI_FIELDS.items()},
    **{_ANTHROPIC_PREFIX + suffix: field for suffix, field in _ANTHROPIC_FIELDS.items()},
}
_NOT_LIMITS = frozenset(REQUEST_ID_HEADERS) | {"retry-after", "retry-after-ms"}
_COUNT, _RESET, _REQUEST_ID = 0, 1, 2
# lower-case header bytes -> (kind, RateLimitInfo field or request-id preference rank)
_KNOWN: dict[bytes, tuple[int, str | int]] = {
    **{name.encode(): (_RESET if field in _RESETS else _COUNT, field) for name, field in _FIELD_OF.items()},
    **{name.encode(): (_REQUEST_ID, rank) for rank, name in enumerate(REQUEST_ID_HEADERS)},
}  # fmt: skip

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|μs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_durations: dict[str, float | None] = {}  # memo: a service repeats the same few strings
_deltas: dict[str, timedelta] = {}
_MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """What the response headers say about limits and the request."""

    rate_limits: RateLimitInfo | None = None
    request_id: str | None = None
    # limits without a RateLimitInfo field (Anthropic input/output-token limits, other
    # `x-ratelimit-*` windows such as Mistral's per-month tokens), JSON-ready
    extra: dict[str, Any] | None = None


NO_FACTS = HeaderFacts()


def parse_duration(text: str) -> float | None:
    """Seconds of a Go duration string (`6m0s`, `1.5s`, `120ms`, `1h2m3.5s`, `0s`) or a bare
    number of seconds; None when `text` is neither."""
    found = _durations.get(text)
    if found is not None or text in _durations:
        return found
    value = _parse_duration(text.strip())
    if len(_durations) >= _MEMO_LIMIT:
        _durations.clear()
    _durations[text] = value
    return value


def _parse_duration(text: str) -> float | None:
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None  # junk between parts
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def parse_reset(text: str, now: datetime) -> datetime | None:
    """An absolute UTC reset time from a duration (relative to `now`) or an RFC 3339 time."""
    delta = _deltas.get(text)
    if delta is None:
        seconds = parse_duration(text)
        if seconds is None:
            return _parse_time(text)
        try:
            delta = timedelta(seconds=seconds)
        except OverflowError:
            return None
        if len(_deltas) >= _MEMO_LIMIT:
            _deltas.clear()
        _deltas[text] = delta
    try:
        return now + delta
    except OverflowError:
        return None


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_retry_after(retry_after_ms: str | None, retry_after: str | None, now: datetime) -> float | None:
    """Milliseconds to wait: `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    if retry_after_ms is not None:
        try:
            ms = float(retry_after_ms)
        except ValueError:
            ms = -1.0
        if 0 <= ms < float("inf"):
            return ms
    if retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                when = parsedate_to_datetime(retry_after)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds() * 1000.0)
        if 0 <= seconds < float("inf"):
            return seconds * 1000.0
    return None


def _count(text: str) -> int | None:
    if text.isdigit() and text.isascii():
        return int(text)
    text = text.strip()
    try:
        value = float(text)  # some gateways send "100.0"
    except ValueError:
        return None
    return int(value) if value >= 0 and value.is_integer() else None


def relevant_headers(headers: Any) -> dict[str, str]:
    """The rate-limit, retry-after and request-id headers, keys lower-cased, values as text."""
    found: dict[str, str] = {}
    raw = getattr(headers, "_list", None)  # httpx / httpx2 Headers: (raw key, lower key, value) bytes
    if raw.__class__ is list and headers.__class__ is not list:
        try:
            for _, key, value in raw:
                if key[0] in _FIRST_BYTES and key.startswith(_RELEVANT_BYTES):
                    found[key.decode("latin-1")] = value.decode("latin-1")
            return found
        except (TypeError, ValueError, IndexError, AttributeError):
            found.clear()  # an unknown layout: read it through the public interface instead
    items: Iterable[Any]
    if isinstance(headers, Mapping):
        items = headers.items()
    elif isinstance(headers, list | tuple):
        items = headers
    elif hasattr(headers, "items"):
        try:
            items = headers.items()
        except Exception:
            return found
    else:
        return found
    for pair in items:
        try:
            key, value = pair
        except (TypeError, ValueError):
            continue
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if not isinstance(key, str):
            continue
        key = key.lower()
        if not key.startswith(_RELEVANT_PREFIXES) and key not in REQUEST_ID_HEADERS:
            continue
        if isinstance(value, list | tuple):  # recordings keep every header as a list of values
            if not value:
                continue
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found.setdefault(key, str(value))
    return found


def read_headers(headers: Any, now: datetime) -> HeaderFacts:
    """Rate limits (resets made absolute against `now`, an aware UTC time) and the request id."""
    raw = getattr(headers, "_list", None)
    if raw.__class__ is list and headers.__class__ is not list:
        try:
            return _read_httpx(raw, now)
        except (TypeError, ValueError, IndexError, AttributeError):
            pass  # an unknown layout: read it through the public interface instead
    found = relevant_headers(headers)
    if not found:
        return NO_FACTS
    return facts_from(found, now)


def _read_httpx(raw: list[Any], now: datetime) -> HeaderFacts:
    """`read_headers` for httpx / httpx2 `Headers` (a list of (raw key, lower key, value)
    bytes): one pass, one dict look-up per header in the common case."""
    limits: dict[str, Any] = {}
    others: dict[str, str] | None = None
    request_id: str | None = None
    rank = len(REQUEST_ID_HEADERS)
    for _, key, value in raw:
        known = _KNOWN.get(key)
        if known is None:
            if key[0] in _FIRST_BYTES and key.startswith(_RELEVANT_BYTES):
                others = others or {}
                others[key.decode("latin-1")] = value.decode("latin-1")
            continue
        kind, target = known
        text = value.decode("latin-1")
        if kind == _COUNT:
            number = _count(text)
            if number is not None:
                limits[target] = number  # type: ignore[index]
        elif kind == _RESET:
            when = parse_reset(text, now)
            if when is not None:
                limits[target] = when  # type: ignore[index]
        elif target < rank and text.strip():  # type: ignore[operator]
            request_id, rank = text.strip(), target  # type: ignore[assignment]
    extra: dict[str, Any] | None = None
    if others is not None:  # retry-after, other windows, Anthropic's input/output-token limits
        retry = parse_retry_after(others.get("retry-after-ms"), others.get("retry-after"), now)
        if retry is not None:
            limits["retry_after_ms"] = retry
        for key, text in others.items():
            named = _extra_limit(key, text, now) if key not in _NOT_LIMITS else None
            if named is not None:
                extra = extra or {}
                extra[named[0]] = named[1]
    if not limits and request_id is None and extra is None:
        return NO_FACTS
    return HeaderFacts(rate_limits=RateLimitInfo(**limits) if limits else None, request_id=request_id, extra=extra)


def facts_from(found: Mapping[str, str], now: datetime) -> HeaderFacts:
    """`read_headers` on headers already reduced by `relevant_headers`."""
    limits: dict[str, Any] = {}
    extra: dict[str, Any] | None = None
    for key, value in found.items():
        field = _FIELD_OF.get(key)
        if field is not None:
            if field in _RESETS:
                when = parse_reset(value, now)
                if when is not None:
                    limits[field] = when
            else:
                number = _count(value)
                if number is not None:
                    limits[field] = number
        elif key not in _NOT_LIMITS:
            named = _extra_limit(key, value, now)
            if named is not None:
                extra = extra or {}
                extra[named[0]] = named[1]
    request_id: str | None = None
    for name in REQUEST_ID_HEADERS:
        given = found.get(name)
        if given:
            request_id = given.strip() or None
            break
    if "retry-after-ms" in found or "retry-after" in found:
        retry = parse_retry_after(found.get("retry-after-ms"), found.get("retry-after"), now)
        if retry is not None:
            limits["retry_after_ms"] = retry
    return HeaderFacts(rate_limits=RateLimitInfo(**limits) if limits else None, request_id=request_id, extra=extra)


def _extra_limit(key: str, value: str, now: datetime) -> tuple[str, Any] | None:
    """A limit without a RateLimitInfo field: other `x-ratelimit-*` windows (Mistral's per
    minute/month tokens, ...) kept as reported; Anthropic's input/output-token limits."""
    if key.startswith(_OPENAI_PREFIX):
        number = _count(value)
        suffix = key[len(_OPENAI_PREFIX) :].replace("-", "_")
        return None if number is None else (f"ratelimit_{suffix}", number)
    if key.startswith(_ANTHROPIC_PREFIX):
        head, _, kind = key[len(_ANTHROPIC_PREFIX) :].rpartition("-")
        if head not in ("input-tokens", "output-tokens") or kind not in ("limit", "remaining", "reset"):
            return None
        name = f"{head.replace('-', '_')}_{kind}"
        if kind == "reset":
            when = parse_reset(value, now)
            return None if when is None else (name + "_at", when.isoformat())
        number = _count(value)
        return None if number is None else (name, number)
    return None


__all__ = [
    "NO_FACTS",
    "REQUEST_ID_HEADERS",
    "HeaderFacts",
    "facts_from",
    "parse_duration",
    "parse_reset",
    "parse_retry_after",
    "read_headers",
    "relevant_headers",
]
