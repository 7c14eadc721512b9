"""One JSON shape for every error the API returns: `{"detail": ..., "request_id": ...}`.

`detail` keeps FastAPI's meaning (a message, or for 422 the list of problems found), so clients
written for FastAPI keep working; `request_id` finds the log lines of the failed request.
Validation problems are returned without the submitted values: those can be large or secret.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sqlalchemy_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from {{ cookiecutter.project_slug }}.cache.guard import CacheUnavailableError
from {{ cookiecutter.project_slug }}.context import current_request_id
from {{ cookiecutter.project_slug }}.db.deadlines import DatabaseBusyError
from {{ cookiecutter.project_slug }}.db.models import RecordNotFoundError

logger = logging.getLogger(__name__)

VALIDATION_PROBLEM_KEYS = ("loc", "msg", "type")
# What an unreachable or restarting database raises: the driver's own connection errors (asyncpg
# raises ConnectionRefusedError as it is) and SQLAlchemy's wrappers of them.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    sqlalchemy_errors.OperationalError,
    sqlalchemy_errors.InterfaceError,
)
# What a reachable but stuck database raises: a statement or lock wait past the deadline, or no
# pooled connection free within DATABASE_POOL_TIMEOUT_SECONDS (SQLAlchemy's TimeoutError).
DATABASE_BUSY: tuple[type[Exception], ...] = (DatabaseBusyError, sqlalchemy_errors.TimeoutError)
DATABASE_RETRY_AFTER_SECONDS = "5"
# About one circuit-breaker cool-down (CACHE_BREAKER_SECONDS' default).
CACHE_RETRY_AFTER_SECONDS = "5"


class ErrorResponse(BaseModel):
    """The body of every error response, documented in the OpenAPI schema."""

    detail: str | list[dict[str, Any]]
    request_id: str


def error_response(
    status_code: int, detail: Any, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"detail": detail, "request_id": current_request_id() or "-"}
    return JSONResponse(body, status_code=status_code, headers=headers)


def internal_error_response() -> JSONResponse:
    return error_response(status.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")


def validation_problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {key: error[key] for key in VALIDATION_PROBLEM_KEYS if key in error} for error in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT, validation_problems(exc.errors())
        )

    @app.exception_handler(RecordNotFoundError)
    async def record_not_found(request: Request, exc: RecordNotFoundError) -> JSONResponse:
        return error_response(status.HTTP_404_NOT_FOUND, str(exc))

    for error_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_class, database_unavailable)
    # Registered for the exact classes: the handler of the closest class in an error's MRO runs,
    # so DatabaseBusyError (an OperationalError) gets this one.
    for error_class in DATABASE_BUSY:
        app.add_exception_handler(error_class, database_busy)
    app.add_exception_handler(CacheUnavailableError, cache_unavailable)


def database_error_response(problem: str, exc: Exception) -> JSONResponse:
    # The type names only: SQLAlchemy's messages quote the statement and its parameters.
    cause = getattr(exc, "orig", None)
    # SQLAlchemy's asyncpg adapter wraps the driver's error once more: name the driver's.
    cause = getattr(cause, "__cause__", None) or cause
    logger.warning(
        "database %s (%s%s); answering 503",
        problem,
        type(exc).__name__,
        f" from {type(cause).__name__}" if cause is not None else "",
    )
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"The database is {problem}; try again shortly",
        {"Retry-After": DATABASE_RETRY_AFTER_SECONDS},
    )


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return database_error_response("unreachable", exc)


async def database_busy(request: Request, exc: Exception) -> JSONResponse:
    # The request's session has rolled back by now: nothing it wrote is kept.
    return database_error_response("busy", exc)


async def cache_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Raised before a commit whose invalidation could not be made safe: nothing was written.
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "The cache cannot be updated right now, so nothing was changed; try again shortly",
        {"Retry-After": CACHE_RETRY_AFTER_SECONDS},
    )
