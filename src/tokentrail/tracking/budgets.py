"""Budget enforcement in the SDK (SPEC §7): `configure(enforce_budgets=True)` with a
collector (`collector_url`, `api_key`).

- The budgets come from the collector (`POST /v1/budgets/sync`: limits, periods, spend so
  far). The first fetch happens when the first call of a newly configured runtime is checked
  (waiting at most a few seconds, once); a background thread re-syncs every
  `budget_sync_interval` seconds. Nothing on the call path does I/O after that.
- Each finished record's cost is counted here, at once, in every budget whose scope matches
  it (project, user_id, tenant_id, feature, model, provider), and kept as pending until the
  collector is known to hold it: a sync first flushes the pipeline (what was counted before
  is then stored, unless it had to be spooled), then sends the ids counted since, and the
  collector answers which of them it stores in the same snapshot as the spend. So the spend
  this process sees is the collector's plus its own not-yet-stored calls, each counted once
  (one stored in the instant between the sync's request and its answer counts twice until
  the next sync: a little more spend for a moment, never less).
- A call whose attribution falls in a hard budget that is exhausted (spend >= limit) raises
  `BudgetExceeded` before the provider is called. The check and the counting hold one lock,
  so a process overshoots a limit by at most the calls it had in flight when it was reached.
- Every budget's `alert_at` fractions warn once per period: a log line and
  `configure(on_budget_warning=callable)` given a `BudgetWarning`. Warnings never block.
- When the collector cannot be reached, what is known keeps being enforced (fail open for
  budgets never fetched); the failure is logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from tokentrail.core import LLMCall
from tokentrail.core.attribution import current_frame
from tokentrail.core.errors import BudgetExceeded
from tokentrail.tracking import clock as _clock
from tokentrail.tracking import runtime as _runtime
from tokentrail.tracking.guard import guard
from tokentrail.tracking.operation import failed, fill_attribution

logger = logging.getLogger("tokentrail.budgets")

PATH = "/v1/budgets/sync"
MAX_ASKED = 10_000  # ids asked about per sync (the collector's limit)
MAX_PENDING = 50_000  # counted calls remembered by id; older ones are folded into a lump
SCOPE_FIELDS: tuple[str, ...] = ("project", "user_id", "tenant_id", "feature", "model", "provider")
FIRST_SYNC_WAIT = 5.0  # seconds the first checked call may wait for the first fetch


@dataclass(frozen=True, slots=True)
class BudgetWarning:
    """A budget reached one of its `alert_at` fractions (given to `on_budget_warning`)."""

    budget: str
    threshold: Decimal  # fraction of the limit, e.g. Decimal("0.8")
    limit: Decimal
    spent: Decimal
    period: str
    period_end: datetime
    hard: bool
    budget_id: int


def period_bounds(period: str, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day, ISO week (from Monday) or month holding `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _usd(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Budget:
    """One budget as this process sees it."""

    __slots__ = (
        "alert_at",
        "hard",
        "id",
        "limit",
        "local",
        "name",
        "period",
        "period_end",
        "period_start",
        "scope",
        "server",
        "warned",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.id = int(data["id"])
        self.name = str(data["name"])
        scope = data.get("scope") or {}
        self.scope = tuple((name, str(scope[name])) for name in SCOPE_FIELDS if scope.get(name))
        self.period = str(data["period"])
        self.limit = Decimal(str(data["limit_usd"]))
        self.alert_at = tuple(sorted(Decimal(str(f)) for f in data.get("alert_at") or ()))
        self.hard = bool(data.get("hard"))
        self.period_start = _time(data["period_start"])
        self.period_end = _time(data["period_end"])
        self.server = Decimal(str(data.get("spent_usd") or 0))  # the collector's figure at the last sync
        self.local = Decimal(0)  # counted here since
        self.warned: set[Decimal] = set()

    @property
    def spent(self) -> Decimal:
        return self.server + self.local

    def matches(self, values: Mapping[str, str | None]) -> bool:
        return all(values.get(name) == value for name, value in self.scope)

    def roll(self, now: datetime) -> None:
        """Start the period holding `now` if the current one is over (spend starts at 0)."""
        if now >= self.period_end:
            self.period_start, self.period_end = period_bounds(self.period, now)
            self.server = self.local = Decimal(0)
            self.warned = set()

    def crossed(self) -> list[BudgetWarning]:
        """Warnings for `alert_at` fractions reached and not yet warned of this period."""
        out = []
        spent = self.spent
        for fraction in self.alert_at:
            if fraction in self.warned or spent < self.limit * fraction:
                continue
            self.warned.add(fraction)
            out.append(
                BudgetWarning(self.name, fraction, self.limit, spent, self.period, self.period_end, self.hard, self.id)
            )
        return out


class Enforcer:
    """Budgets of one runtime: the call-path check, the record tap and the sync thread."""

    def __init__(self, runtime: _runtime.Runtime) -> None:
        settings = runtime.settings
        assert settings.collector_url
        url = urlsplit(settings.collector_url)
        self.runtime = runtime
        self.settings = settings
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._path = url.path.rstrip("/") + PATH
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        self._lock = threading.Lock()
        self._budgets: tuple[_Budget, ...] = ()
        self._hard = False  # any hard budget: otherwise the check is one attribute read
        self._key_project: str | None = None  # a project key's records land in its project
        # counted calls not known to be stored yet: (sequence, id, cost, ((budget id, period start), ...))
        self._pending: deque[tuple[int, str, Decimal, tuple[tuple[int, datetime], ...]]] = deque()
        self._lump: dict[tuple[int, datetime], tuple[Decimal, int]] = {}  # overflow: (cost, last sequence)
        self._seq = 0
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tokentrail-budgets", daemon=True)
        self.syncs = 0
        self.sync_failures = 0

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, wait: float) -> None:
        self._thread.start()
        if not self._synced.wait(wait):
            logger.warning("tokentrail: budgets not fetched from %s yet; calls proceed meanwhile", self._host)

    def stop(self) -> None:
        self._stop.set()

    @property
    def budgets(self) -> tuple[_Budget, ...]:
        return self._budgets

    def _values(self, provider: str | None, model: str | None, attribution: Any) -> dict[str, str | None]:
        project = self._key_project or (attribution.project if attribution is not None else None)
        return {
            "project": project,
            "user_id": attribution.user_id if attribution is not None else None,
            "tenant_id": attribution.tenant_id if attribution is not None else None,
            "feature": attribution.feature if attribution is not None else None,
            "model": model,
            "provider": provider,
        }

    # ---- the call path -------------------------------------------------------------------
    def refusal(self, provider: str | None, model: str | None) -> BudgetExceeded | None:
        """The error refusing a call now, or None when no hard budget of its scope is spent."""
        if not self._hard:
            return None
        attribution = fill_attribution(current_frame()[0], self.settings)
        values = self._values(provider, model, attribution)
        now = _clock.get_clock().now()
        with self._lock:
            for budget in self._budgets:
                if not budget.hard or not budget.matches(values):
                    continue
                budget.roll(now)
                if budget.spent >= budget.limit:
                    return BudgetExceeded(
                        budget.name,
                        budget.limit,
                        budget.spent,
                        period=budget.period,
                        period_end=budget.period_end,
                        budget_id=budget.id,
                    )
        return None

    # ---- the record tap ------------------------------------------------------------------
    def count(self, record: LLMCall) -> None:
        """Add a finished record's cost to the budgets its scope falls in (pending until the
        collector is known to store it)."""
        cost = record.cost_metrics.total_cost if record.cost_metrics is not None else None
        if not cost or not self._budgets:
            return
        values = self._values(record.provider, record.request_model or record.provider_model, record.attribution)
        now = _clock.get_clock().now()
        warnings: list[BudgetWarning] = []
        with self._lock:
            keys = []
            for budget in self._budgets:
                if budget.matches(values):
                    budget.roll(now)
                    budget.local += cost
                    keys.append((budget.id, budget.period_start))
                    if budget.alert_at:
                        warnings += budget.crossed()
            if keys:
                self._seq += 1
                self._pending.append((self._seq, record.id, cost, tuple(keys)))
                if len(self._pending) > MAX_PENDING:  # the collector has been away long: stop remembering ids
                    seq, _, amount, old_keys = self._pending.popleft()
                    for key in old_keys:
                        lump = self._lump.get(key, (Decimal(0), 0))
                        self._lump[key] = (lump[0] + amount, seq)
        if warnings:
            self._warn(warnings)

    def _warn(self, warnings: list[BudgetWarning]) -> None:
        callback: Callable[[BudgetWarning], Any] | None = self.settings.on_budget_warning
        for warning in warnings:
            logger.warning(
                "tokentrail: budget %r reached %s%% of its %s limit: $%s of $%s (until %s)",
                warning.budget,
                format((warning.threshold * 100).normalize(), "f"),
                warning.period,
                _usd(warning.spent),
                _usd(warning.limit),
                warning.period_end.isoformat(),
            )
            if callback is not None:
                with guard("budgets.on_budget_warning"):
                    callback(warning)

    # ---- sync ----------------------------------------------------------------------------
    def sync(self) -> None:
        """Fetch the budgets with the collector's spend, and settle which counted calls it
        stores (those leave the local count: the collector's figure holds them)."""
        with self._lock:
            flushed_seq = self._seq
        delivered = self._flush()  # True: everything counted up to flushed_seq is stored
        with self._lock:
            asked = [p[1] for p in self._pending if not delivered or p[0] > flushed_seq][-MAX_ASKED:]
        data = self._post(asked)
        stored = set(data.get("known") or ())
        fresh = [_Budget(item) for item in data.get("budgets") or ()]
        now = _clock.get_clock().now()
        warnings: list[BudgetWarning] = []
        with self._lock:
            self._pending = deque(
                p for p in self._pending if not ((delivered and p[0] <= flushed_seq) or p[1] in stored)
            )
            if delivered:
                self._lump = {k: v for k, v in self._lump.items() if v[1] > flushed_seq}
            local: dict[tuple[int, datetime], Decimal] = {k: v[0] for k, v in self._lump.items()}
            for _, _, cost, keys in self._pending:
                for key in keys:
                    local[key] = local.get(key, Decimal(0)) + cost
            known = {b.id: b for b in self._budgets}
            for budget in fresh:
                old = known.get(budget.id)
                if old is not None and budget.period_start < old.period_start:
                    # the collector's clock has not reached the period this process is in yet
                    budget.period_start, budget.period_end = old.period_start, old.period_end
                    budget.server = Decimal(0)
                if old is not None and budget.period_start == old.period_start:
                    budget.warned = old.warned
                budget.local = local.get((budget.id, budget.period_start), Decimal(0))
                budget.roll(now)
                if budget.alert_at:
                    warnings += budget.crossed()
            # calls counted in periods that are over (or in budgets now gone) count nowhere: forget them
            live = {(b.id, b.period_start) for b in fresh}
            self._pending = deque(p for p in self._pending if any(key in live for key in p[3]))
            self._lump = {k: v for k, v in self._lump.items() if k in live}
            self._budgets = tuple(fresh)
            self._hard = any(b.hard for b in fresh)
            project = data.get("project")
            self._key_project = project if isinstance(project, str) and project else None
            self.syncs += 1
        self._synced.set()
        if warnings:
            self._warn(warnings)

    @property
    def pending(self) -> int:
        """Counted calls not yet known to be stored by the collector."""
        return len(self._pending)

    def _flush(self) -> bool:
        """Whether every record counted so far has reached the collector (then the
        server's spend includes it)."""
        pipeline = self.runtime.pipeline
        sinks = [s for s in pipeline.sinks if getattr(s, "name", None) == "collector"]
        if not sinks or pipeline.closed:
            return False
        if not pipeline.flush(timeout=self.settings.collector_timeout * 2):
            return False
        return all(not getattr(s, "spooled", 0) for s in sinks)

    def _post(self, ids: list[str]) -> dict[str, Any]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.settings.collector_timeout)
        try:
            conn.request("POST", self._path, body=json.dumps({"ids": ids}), headers=self._headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise OSError(f"POST {PATH} answered HTTP {response.status}: {body[:300].decode(errors='replace')}")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError(f"POST {PATH} answered {type(data).__name__}, not an object")
        return data

    def _sync_logged(self) -> None:
        try:
            self.sync()
        except Exception as exc:  # the collector is down or refused: keep enforcing what is known
            self.sync_failures += 1
            if self.sync_failures & (self.sync_failures - 1) == 0:  # 1st, 2nd, 4th, ... failure
                logger.warning("tokentrail: could not sync budgets (%d failures so far): %s", self.sync_failures, exc)

    def _run(self) -> None:
        self._sync_logged()
        self._synced.set()  # the first attempt is over, fetched or not: calls stop waiting
        while not self._stop.wait(self.settings.budget_sync_interval):
            if self.runtime.pipeline.closed:
                break
            self._sync_logged()
        _runtime.remove_tap(self.count)


# ---- the hook the trackers call --------------------------------------------------------------
_switch_lock = threading.Lock()
_seen: _runtime.Runtime | None = None  # the runtime `_enforcer` was made for
_enforcer: Enforcer | None = None


def _switch(runtime: _runtime.Runtime) -> None:
    """Follow `configure()`: stop the previous runtime's enforcer, start this one's."""
    global _seen, _enforcer
    with _switch_lock:
        if runtime is _seen:
            return
        old, _enforcer = _enforcer, None
        if old is not None:
            old.stop()
            _runtime.remove_tap(old.count)
        new = None
        if runtime.settings.enforce_budgets and runtime.settings.collector_url and not runtime.pipeline.closed:
            new = Enforcer(runtime)
            _runtime.add_tap(new.count)
            new.start(wait=min(FIRST_SYNC_WAIT, runtime.settings.collector_timeout))
        _enforcer = new
        _seen = runtime


def check(provider: str | None, model: str | None) -> None:
    """Raise `BudgetExceeded` if a hard budget covering this call is exhausted (called by the
    trackers as a call starts, before the provider is called). Other failures are tracking's
    own and never reach the caller."""
    runtime = _runtime.get_runtime()
    if runtime is not _seen:
        try:
            _switch(runtime)
        except Exception as exc:
            if failed("budgets.start", exc):
                raise
            return
    enforcer = _enforcer
    if enforcer is None:
        return
    refusal = None
    try:
        refusal = enforcer.refusal(provider, model)
    except Exception as exc:
        if failed("budgets.check", exc):
            raise
    if refusal is not None:
        raise refusal


def current_enforcer() -> Enforcer | None:
    """The enforcer of the current runtime, if enforcement is on (tests, diagnostics)."""
    return _enforcer


__all__ = ["BudgetExceeded", "BudgetWarning", "Enforcer", "check", "current_enforcer", "period_bounds"]
