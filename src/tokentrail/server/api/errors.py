"""Error answers: `{"detail": [{"field", "reason"}, ...]}` for bad input (400), a message
for the rest. Database unavailability is 503 with Retry-After, so SDK senders retry."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tokentrail.core import ValidationError
from tokentrail.server.auth import Forbidden

logger = logging.getLogger("tokentrail.server")


class ApiError(Exception):
    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.headers = headers

    @classmethod
    def field(cls, field: str, reason: str, status: int = 400) -> ApiError:
        return cls(status, [{"field": field, "reason": reason}])


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    return JSONResponse({"detail": [{"field": exc.field, "reason": exc.reason}]}, status_code=400)


def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        field = ".".join(loc[1:]) if len(loc) > 1 and loc[0] in ("query", "path", "header", "body") else ".".join(loc)
        detail.append({"field": field or "request", "reason": error.get("msg", "is invalid")})
    return JSONResponse({"detail": detail}, status_code=400)


def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("tokentrail: database unavailable: %s", exc)
    return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503, headers={"Retry-After": "1"})


def _bad_value(request: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses (PostgreSQL: a NUL character in text, a number out of
    # range) came from the request: the caller's mistake, not the server's.
    assert isinstance(exc, DataError)
    text = str(exc.orig or exc).strip()
    reason = text.splitlines()[0] if text else "is invalid"
    return JSONResponse(
        {"detail": [{"field": "request", "reason": f"holds a value the database cannot use: {reason}"}]},
        status_code=400,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(DataError, _bad_value)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(PoolTimeout, _unavailable)  # every pooled connection busy


__all__ = ["ApiError", "install"]
