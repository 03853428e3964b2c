"""Batched delivery to the collector server (`POST {collector_url}/v1/calls`) with an on-disk
spool while the server cannot take records.

Protocol: a gzip JSON body `{"calls": [record, ...]}` with `Authorization: Bearer <api_key>`;
the server answers `{"accepted": n, "duplicates": m}` after commit and is idempotent on the
record `id`, so sending a record twice stores it once.

Delivery rules:
- Connection errors, timeouts, 408, 429 and 5xx are transient: a new batch is retried up to
  `collector_max_retries` times with exponential backoff and jitter, within a few seconds at
  most, then spooled. The sink is then "down": later batches go straight to the spool (no
  network wait on the worker) until a backoff delay (1 s, doubling to `backoff_max`, or the
  server's `Retry-After`) has passed; the next `write` or `flush` then sends the spool,
  oldest first, before anything newer, so records arrive in order.
- 413 or 400/422 on a batch of several records: the batch is split in halves and each half
  sent again, so one bad record cannot hold back its neighbours.
- Any other refusal (a 4xx other than 408/429, a single record refused with 400/413/422, an
  unexpected 3xx) is logged with the server's answer (its field error) and the records are
  appended to `rejected.jsonl` in the spool directory as
  `{"rejected_at", "status", "error", "record"}` lines for inspection or replay; they are
  not retried automatically, and not lost.
- A spool segment is deleted only when the server acknowledged every record in it.

HTTP client: the standard library's `http.client`, one persistent keep-alive connection
owned by the worker thread. It adds no dependency to the SDK, costs only a few tens of
microseconds per request (the body is built from already-serialised JSON lines, so spooled
records are sent without re-parsing), and every timeout and error surfaces as `OSError` or
`http.client.HTTPException`, which is all the retry logic needs. Proxies are not used.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from tokentrail.core import LLMCall, ValidationError
from tokentrail.core.settings import Settings
from tokentrail.sinks.spool import Spool

logger = logging.getLogger("tokentrail.sinks.collector")

PATH = "/v1/calls"
MAX_BODY_BYTES = 4 * 1024 * 1024  # uncompressed JSON per request
CONNECT_TIMEOUT = 2.0  # seconds; reads wait `collector_timeout`
REJECTED_FILE = "rejected.jsonl"
_TRANSIENT = frozenset({408, 429})


class _Transient(Exception):
    """The server could not take the batch now (down, overloaded, timed out)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class CollectorSink:
    """Sends batches to the collector; spools what it cannot deliver. See the module docstring."""

    name = "collector"

    def __init__(
        self,
        settings: Settings,
        *,
        backoff_base: float = 0.05,
        outage_backoff: float = 1.0,
        backoff_max: float = 30.0,
        retry_budget: float = 5.0,
        drain_budget: float = 1.0,
    ) -> None:
        if not settings.collector_url:
            raise ValidationError("collector_url", "is required when the collector sink is enabled")
        url = urlsplit(settings.collector_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValidationError("collector_url", f"{settings.collector_url!r} is not an http(s) URL")
        self.url = settings.collector_url.rstrip("/") + PATH
        self._scheme = url.scheme
        self._host = url.hostname
        self._port = url.port
        self._path = url.path.rstrip("/") + PATH
        self._timeout = settings.collector_timeout
        self._headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Accept": "application/json"}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        self.max_retries = max(0, settings.collector_max_retries)
        self.batch_size = settings.batch_size
        self.backoff_base = backoff_base  # first pause between retries of one batch (doubles, <= 2 s)
        self.outage_backoff = outage_backoff  # first wait before contacting a down server again (doubles)
        self.backoff_max = backoff_max  # longest wait while down
        self.retry_budget = retry_budget  # seconds one new batch may spend retrying
        self.drain_budget = drain_budget  # seconds a `write` may spend sending the spool
        self.spool = Spool(settings.spool_path, settings.spool_max_bytes)
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.RLock()
        self._down_until = 0.0
        self._outages = 0  # consecutive failed attempts while down, for the backoff
        # counters for stats()
        self.sent = 0  # records the server accepted (new)
        self.duplicates = 0  # records the server already had
        self.rejected = 0  # records refused, kept in rejected.jsonl
        self.failures = 0  # failed HTTP attempts
        self._rejected_dropped = 0
        self._last_retry_after: str | None = None

    # ---- stats ---------------------------------------------------------------------------
    @property
    def spooled(self) -> int:
        return self.spool.spooled

    @property
    def dropped(self) -> int:
        return self.spool.dropped + self._rejected_dropped

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    # ---- Sink ----------------------------------------------------------------------------
    def write(self, calls: Sequence[LLMCall]) -> None:
        if not calls:
            return
        lines = [call.to_json().encode() for call in calls]
        with self._lock:
            if self.spool.spooled or self.is_down:
                # Older records wait in the spool: queue behind them to keep the order.
                self.spool.append(lines)
                if not self.is_down:
                    self._drain(deadline=time.monotonic() + self.drain_budget)
                return
            chunks = self._chunks(lines)
            for i, chunk in enumerate(chunks):
                try:
                    self._send_with_retries(chunk)
                except _Transient as exc:
                    self._went_down(exc)
                    for later in chunks[i:]:  # this chunk and every later one: the server is down
                        self.spool.append(later)
                    return

    def flush(self) -> None:
        """Send the spool if the server is not known to be down, and fsync it."""
        with self._lock:
            self.spool.refresh()
            if not self.is_down and self.spool.spooled:
                self._drain(deadline=None)
            self.spool.sync()

    def close(self) -> None:
        with self._lock:
            try:
                self.flush()
            finally:
                self.spool.close()
                self._close_connection()

    def retry_now(self) -> None:
        """Forget the backoff: the next write or flush contacts the server."""
        with self._lock:
            self._down_until = 0.0

    # ---- delivery ------------------------------------------------------------------------
    def _drain(self, deadline: float | None) -> None:
        """Send spooled records oldest first, until empty, a failure, or the deadline."""
        while deadline is None or time.monotonic() < deadline:
            batch = self.spool.next_batch(self.batch_size, MAX_BODY_BYTES)
            if batch is None:
                return
            try:
                if batch.lines:
                    self._send(batch.lines)
            except _Transient as exc:
                self._went_down(exc)
                return
            self.spool.ack(batch)
            self._outages = 0

    def _send_with_retries(self, lines: list[bytes]) -> None:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                self._send(lines)
                self._outages = 0
                return
            except _Transient as exc:
                attempt += 1
                delay = min(2.0, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                if attempt > self.max_retries or time.monotonic() - started + delay > self.retry_budget:
                    raise
                time.sleep(delay)

    def _send(self, lines: Sequence[bytes]) -> None:
        """Deliver `lines`, splitting on 400/413/422; refused records go to rejected.jsonl."""
        status, body = self._post(lines)
        if 200 <= status < 300:
            self._count_ack(body, len(lines))
            return
        if status in _TRANSIENT or status >= 500:
            self.failures += 1
            raise _Transient(f"HTTP {status}", _retry_after(self._last_retry_after))
        if status in (400, 413, 422) and len(lines) > 1:
            half = len(lines) // 2
            self._send(lines[:half])
            self._send(lines[half:])
            return
        self._reject(lines, status, body)

    def _post(self, lines: Sequence[bytes]) -> tuple[int, bytes]:
        payload = gzip.compress(b'{"calls":[' + b",".join(lines) + b"]}", compresslevel=1, mtime=0)
        reused = self._conn is not None
        for _ in range(2):
            try:
                conn = self._connection()
                conn.request("POST", self._path, body=payload, headers=self._headers)
                response = conn.getresponse()
                body = response.read()
                self._last_retry_after = response.getheader("Retry-After")
                if response.getheader("Connection", "").lower() == "close":
                    self._close_connection()
                return response.status, body
            except (OSError, http.client.HTTPException) as exc:
                self._close_connection()
                if reused:
                    reused = False  # a keep-alive connection the server closed: one fresh try
                    continue
                self.failures += 1
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            # A short connect timeout: an unreachable host must not hold the worker for the
            # whole request timeout; once connected, reads get `collector_timeout`.
            conn = cls(self._host, self._port, timeout=min(self._timeout, CONNECT_TIMEOUT))
            try:
                conn.connect()
                assert conn.sock is not None
                conn.sock.settimeout(self._timeout)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _count_ack(self, body: bytes, expected: int) -> None:
        try:
            answer = json.loads(body)
            accepted, duplicates = int(answer["accepted"]), int(answer.get("duplicates", 0))
        except (ValueError, TypeError, KeyError):
            logger.warning("tokentrail: collector %s answered 2xx without counts: %.200r", self.url, body)
            self.sent += expected
            return
        if accepted + duplicates != expected:
            logger.warning("tokentrail: collector acknowledged %d+%d of %d records", accepted, duplicates, expected)
        self.sent += accepted
        self.duplicates += duplicates

    def _went_down(self, exc: _Transient) -> None:
        self._outages += 1
        delay = min(self.backoff_max, self.outage_backoff * 2 ** (self._outages - 1)) * random.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = min(self.backoff_max, max(delay, exc.retry_after))
        self._down_until = time.monotonic() + delay
        if self._outages == 1:
            logger.warning(
                "tokentrail: collector %s unreachable (%s); spooling to %s", self.url, exc, self.spool.directory
            )

    def _reject(self, lines: Sequence[bytes], status: int, body: bytes) -> None:
        error = _error_json(body)
        logger.error(
            "tokentrail: collector refused %d record(s) with HTTP %d: %s; kept in %s",
            len(lines),
            status,
            error.decode(errors="replace")[:500],
            self.spool.directory / REJECTED_FILE,
        )
        stamp = json.dumps(datetime.now(UTC).isoformat().replace("+00:00", "Z")).encode()
        data = b"".join(
            b'{"rejected_at":%s,"status":%d,"error":%s,"record":%s}\n' % (stamp, status, error, line) for line in lines
        )
        path = self.spool.directory / REJECTED_FILE
        try:
            size = path.stat().st_size if path.exists() else 0
            if size + len(data) > self.spool.max_bytes:
                raise OSError(f"{path} is over spool_max_bytes")
            self.spool.directory.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as f:
                f.write(data)
        except OSError as exc:
            self._rejected_dropped += len(lines)
            logger.error("tokentrail: could not keep %d rejected record(s): %s", len(lines), exc)
            return
        self.rejected += len(lines)

    def _chunks(self, lines: list[bytes]) -> list[list[bytes]]:
        """Split into requests of at most `batch_size` records and about MAX_BODY_BYTES."""
        chunks: list[list[bytes]] = []
        current: list[bytes] = []
        size = 0
        for line in lines:
            if current and (len(current) >= self.batch_size or size + len(line) > MAX_BODY_BYTES):
                chunks.append(current)
                current, size = [], 0
            current.append(line)
            size += len(line) + 1
        if current:
            chunks.append(current)
        return chunks


def _error_json(body: bytes) -> bytes:
    """The server's answer as one-line JSON (its own JSON, or the text as a string)."""
    try:
        return json.dumps(json.loads(body), separators=(",", ":")).encode()
    except ValueError:
        return json.dumps(body.decode(errors="replace")[:2000]).encode()


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


__all__ = ["MAX_BODY_BYTES", "PATH", "REJECTED_FILE", "CollectorSink"]
