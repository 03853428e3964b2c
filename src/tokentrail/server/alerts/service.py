"""The per-app alert service: an evaluator thread and a delivery thread.

- Ingest calls `records_stored(app, project)` after its transaction committed. That only
  marks the project dirty and sets an event (no I/O, no waiting), so evaluation stays off the
  ingest latency path. The evaluator wakes, waits `debounce` seconds so a burst of batches
  becomes one pass, and evaluates the budgets and rules of the dirty projects.
- Every `interval` seconds (and once at start) it also runs a full pass after folding in
  calls the SDK wrote straight into the file: windows and periods that roll over, and
  records that arrived around ingest, are evaluated even when nothing is posted.
- The delivery thread sends what the passes claimed, and retries from the database (so any
  instance finishes what another started, and retries survive restarts).

Settings come from the environment (`AlertSettings.load()`); see docs/budgets.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from tokentrail.core import ValidationError
from tokentrail.server.alerts import delivery, evaluate, periods, store
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database

logger = logging.getLogger("tokentrail.alerts")

_ENV = {
    "interval": "TOKENTRAIL_ALERT_INTERVAL",
    "debounce": "TOKENTRAIL_ALERT_DEBOUNCE",
    "max_attempts": "TOKENTRAIL_ALERT_MAX_ATTEMPTS",
    "backoff": "TOKENTRAIL_ALERT_BACKOFF",
    "backoff_max": "TOKENTRAIL_ALERT_BACKOFF_MAX",
    "timeout": "TOKENTRAIL_ALERT_TIMEOUT",
}


@dataclass(frozen=True, slots=True)
class AlertSettings:
    interval: float = 30.0  # seconds between scheduled passes; 0 turns the schedule off
    debounce: float = 0.2  # seconds to gather ingest notifications into one pass
    max_attempts: int = 6  # webhook attempts per alert before it is marked failed
    backoff: float = 1.0  # first retry delay in seconds, doubling
    backoff_max: float = 300.0
    timeout: float = 5.0  # per webhook request
    lease: float = 60.0  # an attempt unfinished after this may be taken by another sender

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> AlertSettings:
        env = os.environ if env is None else env
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            try:
                values[name] = int(raw) if kinds[name] == "int" else float(raw)
            except ValueError:
                raise ValidationError(var, f"{raw!r} is not a number") from None
        values.update(overrides)
        settings = cls(**values)
        for name in ("interval", "debounce", "backoff", "backoff_max", "timeout", "lease"):
            if getattr(settings, name) < 0:
                raise ValidationError(_ENV.get(name, name), "must not be negative")
        if settings.max_attempts < 1:
            raise ValidationError(_ENV["max_attempts"], "must be at least 1")
        return settings


class AlertService:
    """Evaluates and delivers alerts for one app (one database)."""

    def __init__(self, db: Database, settings: AlertSettings | None = None) -> None:
        self.db = db
        self.settings = settings or AlertSettings.load()
        self._lock = threading.Lock()
        self._dirty: set[str] | None = set()  # projects to evaluate; None: all
        self._pending = False
        self._wake = threading.Event()
        self._deliver = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.passes = 0  # evaluation passes run (for stats and tests)

    # ---- the hook ------------------------------------------------------------------------
    def notify(self, project: str | None = None) -> None:
        """Records were stored (for `project`, or for any project when None). Never blocks."""
        with self._lock:
            if project is None or self._dirty is None:
                self._dirty = None
            else:
                self._dirty.add(project)
            self._pending = True
        self._wake.set()

    # ---- synchronous passes (the threads run these; tests and the CLI may too) ------------
    def evaluate_now(self, projects: set[str] | None = None) -> list[int]:
        """One evaluation pass; returns the ids of the alerts it claimed."""
        claimed = evaluate.evaluate(self.db, periods.now(), projects)
        self.passes += 1
        if claimed:
            self._deliver.set()
        return claimed

    def deliver_now(self) -> int:
        """Attempt every due delivery once; returns the number of attempts."""
        s = self.settings
        return delivery.deliver_due(
            self.db,
            timeout=s.timeout,
            max_attempts=s.max_attempts,
            backoff=s.backoff,
            backoff_max=s.backoff_max,
            lease=s.lease,
        )

    # ---- threads -------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._evaluator, "tokentrail-alerts"), (self._sender, "tokentrail-alert-delivery")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._deliver.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _take_dirty(self) -> set[str] | None:
        with self._lock:
            dirty, self._dirty, self._pending = self._dirty, set(), False
        return dirty

    def _evaluator(self) -> None:
        interval = self.settings.interval
        next_full = time.monotonic()  # a full pass at start: catch up with time spent down
        while not self._stop.is_set():
            timeout = max(0.0, next_full - time.monotonic()) if interval > 0 else None
            woken = self._wake.wait(timeout)
            if self._stop.is_set():
                return
            if woken:
                self._wake.clear()
                if self._stop.wait(self.settings.debounce):
                    return
                if self._pending:
                    self._run(self._take_dirty(), full=False)
            if interval > 0 and time.monotonic() >= next_full:
                self._take_dirty()  # a full pass covers them
                self._run(None, full=True)
                next_full = time.monotonic() + interval

    def _run(self, projects: set[str] | None, *, full: bool) -> None:
        try:
            if full:
                rollups.catch_up(self.db)
            self.evaluate_now(projects)
        except Exception:  # a database hiccup must not end the thread
            logger.exception("tokentrail: alert evaluation failed")
            with self._lock:  # the next pass (an ingest or the schedule) evaluates everything
                self._dirty, self._pending = None, True

    def _sender(self) -> None:
        while not self._stop.is_set():
            wait: float = self.settings.interval or 30.0
            try:
                self.deliver_now()
                with self.db.read() as conn:
                    due = store.next_due(conn)
                if due is not None:
                    wait = min(wait, max(0.0, due / 1_000_000 - time.time()))
            except Exception:
                logger.exception("tokentrail: alert delivery failed")
                wait = 1.0
            self._deliver.wait(wait)
            self._deliver.clear()


def records_stored(app: FastAPI, project: str | None) -> None:
    """The ingest hook: new records were committed (for `project`; None: any project)."""
    service: AlertService | None = getattr(app.state, "alerts", None)
    if service is not None:
        service.notify(project)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan (after migrations): the alert service's threads."""
    service = AlertService(app.state.db, AlertSettings.load())
    app.state.alerts = service
    service.start()
    try:
        yield
    finally:
        app.state.alerts = None
        await run_in_threadpool(service.stop)  # joins the threads: not on the event loop


__all__ = ["AlertService", "AlertSettings", "lifespan", "records_stored"]
