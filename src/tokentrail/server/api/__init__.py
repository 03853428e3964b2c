"""HTTP routers of the collector. `ROUTERS` is what `create_app` mounts: a new endpoint
family (OTLP `/v1/traces`, evaluations, `/metrics`, repricing) adds its router here."""

from __future__ import annotations

from fastapi import APIRouter

from tokentrail.server.api import calls, health, ingest, traces, usage

ROUTERS: list[APIRouter] = [health.router, ingest.router, calls.router, usage.router, traces.router]

__all__ = ["ROUTERS"]
