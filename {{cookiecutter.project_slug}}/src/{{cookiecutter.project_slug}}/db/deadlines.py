"""The database deadline: hitting it is a retryable 503, not a hung request or a 500.

DATABASE_STATEMENT_TIMEOUT_SECONDS caps each statement and each lock wait. The engine modules
hand it to their driver (PostgreSQL's statement_timeout and lock_timeout, SQLite's busy timeout)
and tell `report_deadlines_as_busy` which driver errors mean "the deadline passed"; those are
raised as DatabaseBusyError, which errors.py answers with 503 and Retry-After. Every other
database error (a constraint violation, a syntax error) keeps its own type.
"""

import math
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseBusyError(OperationalError):
    """A statement or a lock wait ran past the database deadline.

    An OperationalError, so code that handles database errors in general still catches it.
    """


def milliseconds(seconds: float) -> int:
    # Rounded up: a deadline rounded down to 0 ms would switch PostgreSQL's timeouts off.
    return math.ceil(seconds * 1000)


def report_deadlines_as_busy(
    engine: AsyncEngine, hit_deadline: Callable[[BaseException], bool]
) -> None:
    """Raise DatabaseBusyError instead of the driver errors `hit_deadline` recognises."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def translate(context: ExceptionContext) -> DatabaseBusyError | None:
        error = context.original_exception
        if not hit_deadline(error):
            return None
        # hide_parameters: the values a statement carried stay out of the message.
        return DatabaseBusyError(context.statement, context.parameters, error, hide_parameters=True)
