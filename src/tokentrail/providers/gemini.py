"""Placeholder until the gemini adapter lands (being written now)."""

from __future__ import annotations

from typing import Any

from tokentrail.core import TokenUsage


def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    raise NotImplementedError("gemini usage extraction is being written")
