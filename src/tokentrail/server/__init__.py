"""The tokentrail collector: FastAPI app over SQLite or PostgreSQL (see docs/server.md).

Imports only `tokentrail.core` and `tokentrail.pricing` of ours.
"""

from __future__ import annotations

from tokentrail.server.app import app_from_env, create_app
from tokentrail.server.db.calls import store_calls
from tokentrail.server.settings import ServerSettings

__all__ = ["ServerSettings", "app_from_env", "create_app", "store_calls"]
