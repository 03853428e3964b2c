"""The one guard around every telemetry hook (SPEC §8: tracking never breaks the host).

`with guard("where"):` logs and swallows any exception raised inside, and counts it in
`stats().internal_errors`. Under tests (`TOKENTRAIL_TESTING=1`, or `set_reraise(True)`) it
re-raises instead, so bugs in tokentrail fail the test rather than disappear in a log.
`BaseException`s that are not `Exception`s (KeyboardInterrupt, cancellation) always pass, and
so does `BudgetExceeded`: budget enforcement refuses a call on purpose.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from tokentrail.core.errors import BudgetExceeded

logger = logging.getLogger("tokentrail")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_errors = 0
_per_site: dict[str, int] = {}
_reraise: bool | None = None  # None: decided by TOKENTRAIL_TESTING


def set_reraise(value: bool | None) -> None:
    """Force re-raising on (True) or off (False); None goes back to `TOKENTRAIL_TESTING`."""
    global _reraise
    _reraise = value


def reraise_enabled() -> bool:
    if _reraise is not None:
        return _reraise
    return os.environ.get("TOKENTRAIL_TESTING", "").strip().lower() in ("1", "true", "yes", "on")


def internal_errors() -> int:
    """How many exceptions the guard has caught since the process started."""
    return _errors


def record_internal_error(where: str, exc: BaseException) -> None:
    """Count and log an exception caught inside tokentrail (rate-limited per site)."""
    global _errors
    with _lock:
        _errors += 1
        seen = _per_site[where] = _per_site.get(where, 0) + 1
    if seen & (seen - 1) == 0:  # 1st, 2nd, 4th, 8th... occurrence at this site
        logger.warning(
            "tokentrail: internal error in %s ignored (%d so far here): %s",
            where,
            seen,
            exc,
            exc_info=(type(exc), exc, exc.__traceback__) if seen == 1 else None,
        )


class guard:
    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, BudgetExceeded):
            return False  # BudgetExceeded is a deliberate refusal (budget enforcement), not a bug
        record_internal_error(self.where, exc)
        return not reraise_enabled()


def guarded(where: str, default: Any = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form: the function returns `default` instead of raising (outside tests)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with guard(where):
                return fn(*args, **kwargs)
            return default  # type: ignore[no-any-return]

        return wrapper

    return decorate


__all__ = ["guard", "guarded", "internal_errors", "record_internal_error", "reraise_enabled", "set_reraise"]
