"""Budgets and alerts on the collector (SPEC §7).

- `periods`: UTC budget periods (day, week, month) and alert-rule windows, and the clock.
- `specs`: budgets and alert rules as validated values (the API's JSON in and out).
- `store`: the alert history table (claiming a threshold once, delivery state).
- `evaluate`: one evaluation pass over every budget and rule.
- `delivery`: webhook POSTs with retries and backoff.
- `service`: the per-app evaluator and delivery threads, fed by ingest and by a schedule.

Submodules are imported explicitly (this package imports nothing itself), so the storage
modules can use `periods` and `specs` without an import cycle.
"""
