"""HTTP routers of the collector. `ROUTERS` is what `create_app` mounts: a new endpoint
family (OTLP `/v1/traces`, evaluations, `/metrics`, repricing) adds its router here."""

from __future__ import annotations

from fastapi import APIRouter

from tokentrail.server import dashboard
from tokentrail.server.api import alerts as alerts_api
from tokentrail.server.api import budgets as budgets_api
from tokentrail.server.api import calls, health, ingest, traces, usage
from tokentrail.server.api import evaluations as evaluations_api
from tokentrail.server.api import metrics as metrics_api
from tokentrail.server.api import otlp as otlp_api
from tokentrail.server.api import reprice as reprice_api

ROUTERS: list[APIRouter] = [health.router, ingest.router, calls.router, usage.router, traces.router]
ROUTERS.append(evaluations_api.router)
ROUTERS.append(metrics_api.router)  # GET /metrics (Prometheus)
ROUTERS.append(reprice_api.router)  # POST /v1/reprice
ROUTERS.append(otlp_api.router)  # OTLP/HTTP POST /v1/traces
ROUTERS.append(budgets_api.router)  # /v1/budgets
ROUTERS.append(alerts_api.router)  # /v1/alert-rules, /v1/alerts; starts the alert service
ROUTERS.append(dashboard.router)  # the web dashboard at / (last: its paths are the least specific)

__all__ = ["ROUTERS"]
