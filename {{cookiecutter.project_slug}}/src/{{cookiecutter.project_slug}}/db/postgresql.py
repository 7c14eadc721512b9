"""PostgreSQL through asyncpg, with a bounded connection pool and the database deadline."""

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from {{ cookiecutter.project_slug }}.db.deadlines import milliseconds, report_deadlines_as_busy
from {{ cookiecutter.project_slug }}.settings import Settings

# What PostgreSQL answers when statement_timeout (query_canceled) or lock_timeout
# (lock_not_available) ends a statement.
DEADLINE_SQLSTATES = frozenset({"57014", "55P03"})
# asyncpg's own timeout, past the server's: it fires only when the server stops answering
# altogether (its timeouts cannot), and that is reported as an unreachable database.
CLIENT_TIMEOUT_MARGIN_SECONDS = 1.0


def hit_deadline(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) in DEADLINE_SQLSTATES


def create_engine(settings: Settings) -> AsyncEngine:
    deadline = settings.database_statement_timeout_seconds
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        # A connection the server closed (restart, idle timeout) is replaced, not handed out.
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.database_pool_timeout_seconds,
            "command_timeout": deadline + CLIENT_TIMEOUT_MARGIN_SECONDS,
            # Set at connect time, so every statement on every pooled connection is bounded.
            "server_settings": {
                "application_name": settings.database_application_name,
                "statement_timeout": str(milliseconds(deadline)),
                "lock_timeout": str(milliseconds(deadline)),
            },
        },
    )
    report_deadlines_as_busy(engine, hit_deadline)
    return engine
