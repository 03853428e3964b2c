"""Shared, thread-safe state of one mock server: prompt cache, rate-limit buckets, injected
errors, ids and the log of answered calls."""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokentrail.core import ValidationError
from tokentrail.mockprovider.config import MockConfig, error_kind


@dataclass(frozen=True, slots=True)
class Usage:
    """What the mock billed for one call, in tokentrail's inclusive convention:
    `input_tokens` includes cache reads and writes, `output_tokens` includes reasoning.
    Each provider module converts it to that provider's wire format."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0  # Anthropic: the part of the writes with a 1-hour TTL

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class MockCall:
    """One answered request, as the mock meant it (what tests compare extraction against)."""

    provider: str  # openai | azure | anthropic | gemini
    api: str  # chat.completions, responses, embeddings, completions, messages, generateContent, ...
    model: str
    status: int
    stream: bool
    request_id: str | None
    usage: Usage | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "api": self.api,
            "model": self.model,
            "status": self.status,
            "stream": self.stream,
            "request_id": self.request_id,
            "usage": None if self.usage is None else self.usage.to_dict(),
            "error": self.error,
        }


class PromptCache:
    """Prefix digests seen before, per (provider, model); bounded, least recently used out."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: OrderedDict[tuple[str, str, bytes], None] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def longest_hit(self, scope: tuple[str, str], digests: Mapping[int, bytes]) -> int:
        """The longest boundary (tokens) whose prefix was stored before; 0 if none."""
        with self._lock:
            for boundary in sorted(digests, reverse=True):
                key = (*scope, digests[boundary])
                if key in self._seen:
                    self._seen.move_to_end(key)
                    return boundary
        return 0

    def store(self, scope: tuple[str, str], digests: Mapping[int, bytes]) -> None:
        with self._lock:
            for digest in digests.values():
                key = (*scope, digest)
                self._seen[key] = None
                self._seen.move_to_end(key)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


class RateLimited(Exception):
    """A bucket cannot afford the request; `retry_after_s` is when it could."""

    def __init__(self, bucket: str, limit: int, requested: int, retry_after_s: float) -> None:
        super().__init__(f"{bucket}: limit {limit}, requested {requested}")
        self.bucket = bucket
        self.limit = limit
        self.requested = requested
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class BucketReading:
    limit: int
    remaining: int
    reset_s: float  # seconds until the bucket is full again


class _Bucket:
    """A token bucket refilled continuously at `capacity` per minute (OpenAI's model: the reset
    header is the time until the bucket is full again, e.g. `12ms` after one request of 5000)."""

    __slots__ = ("capacity", "level", "updated")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        rate = self.capacity / 60.0
        self.level = min(float(self.capacity), self.level + (now - self.updated) * rate)
        self.updated = now

    def wait_for(self, amount: int) -> float:
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing / (self.capacity / 60.0)

    def reading(self) -> BucketReading:
        remaining = max(0, math.floor(self.level))
        return BucketReading(self.capacity, remaining, (self.capacity - self.level) / (self.capacity / 60.0))


class RateLimiter:
    """Buckets per (provider, API key digest, bucket name)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def admit(
        self, provider: str, key: str, demands: Mapping[str, tuple[int, int]], enforce: bool
    ) -> dict[str, BucketReading]:
        """Charge `demands` (bucket -> (capacity, amount)) all or nothing; raises `RateLimited`
        with the longest wait when one bucket cannot afford its amount and `enforce` is on."""
        now = self._clock()
        with self._lock:
            buckets: dict[str, _Bucket] = {}
            for name, (capacity, _amount) in demands.items():
                bucket = self._buckets.get((provider, key, name))
                if bucket is None or bucket.capacity != capacity:
                    bucket = self._buckets[(provider, key, name)] = _Bucket(capacity, now)
                bucket.refill(now)
                buckets[name] = bucket
            if enforce:
                worst: RateLimited | None = None
                for name, (capacity, amount) in demands.items():
                    wait = buckets[name].wait_for(amount)
                    if wait > 0 and (worst is None or wait > worst.retry_after_s):
                        worst = RateLimited(name, capacity, amount, wait)
                if worst is not None:
                    raise worst
            for name, (_capacity, amount) in demands.items():
                buckets[name].level = max(0.0, buckets[name].level - amount)
            return {name: bucket.reading() for name, bucket in buckets.items()}

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


@dataclass(slots=True)
class _Forced:
    kind: str
    remaining: int
    provider: str | None


@dataclass(slots=True)
class ErrorPlan:
    """Which requests fail: queued `fail_next` errors first, then the random error rate."""

    seed: int
    _queue: deque[_Forced] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def fail_next(self, kind: str, count: int = 1, provider: str | None = None) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValidationError("count", f"must be a positive integer, got {count!r}")
        with self._lock:
            self._queue.append(_Forced(error_kind(kind), count, provider))

    def draw(self, provider: str, rate: float, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            for forced in self._queue:
                if forced.provider in (None, provider):
                    forced.remaining -= 1
                    if forced.remaining <= 0:
                        self._queue.remove(forced)
                    return forced.kind
            if rate > 0 and self._rng.random() < rate:
                return kinds[self._rng.randrange(len(kinds))]
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rng = random.Random(self.seed)


class MockState:
    """Everything requests share."""

    def __init__(self, config: MockConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.cache = PromptCache()
        self.limits = RateLimiter(clock)
        self.errors = ErrorPlan(config.seed)
        self._calls: deque[MockCall] = deque(maxlen=10_000)
        self._counter = 0
        self._lock = threading.Lock()

    def new_id(self, length: int = 24, alphabet: str = "0123456789abcdef") -> str:
        """A fresh id, reproducible for a given seed and request order."""
        with self._lock:
            self._counter += 1
            counter = self._counter
        digest = hashlib.sha256(f"{self.config.seed}:{counter}".encode()).digest()
        number = int.from_bytes(digest, "big")
        chars = []
        for _ in range(length):
            number, index = divmod(number, len(alphabet))
            chars.append(alphabet[index])
        return "".join(chars)

    def record(self, call: MockCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[MockCall]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        self.cache.clear()
        self.limits.clear()
        self.errors.clear()
        with self._lock:
            self._calls.clear()
            self._counter = 0
