"""Errors shared by every layer."""

from __future__ import annotations


class TokentrailError(Exception):
    """Base class of every error tokentrail raises on purpose."""


class ValidationError(TokentrailError, ValueError):
    """Bad input: names the offending field (dotted path) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def prefixed(self, prefix: str) -> ValidationError:
        """The same error, located under a parent section."""
        return ValidationError(f"{prefix}.{self.field}" if prefix else self.field, self.reason)


class MissingExtraError(TokentrailError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'tokentrail[{extra}]'")
        self.extra = extra
