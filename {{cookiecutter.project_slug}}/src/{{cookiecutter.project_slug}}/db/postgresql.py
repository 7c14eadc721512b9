"""PostgreSQL through asyncpg, with a bounded connection pool and the database deadline."""

import shlex
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.db.deadlines import milliseconds, report_deadlines_as_busy
from {{ cookiecutter.project_slug }}.db.errors import ExplainedDatabaseError
from {{ cookiecutter.project_slug }}.settings import Settings

DEFAULT_PORT = 5432
# Every server has it; CREATE DATABASE cannot run inside the database it creates.
MAINTENANCE_DATABASE = "postgres"
# SQLSTATE codes (PostgreSQL's "Errors and Messages" appendix) with a cause worth naming.
DATABASE_MISSING = "3D000"
DATABASE_EXISTS = "42P04"
PERMISSION_DENIED = "42501"
# 28000: unknown role or no pg_hba.conf entry; 28P01: wrong password.
AUTHENTICATION_FAILED = frozenset({"28000", "28P01"})
# A table or a column the code expects is missing: migrations have not (all) run.
NOT_MIGRATED = frozenset({"42P01", "42703"})

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


def sqlstate(error: DBAPIError) -> str | None:
    code = getattr(error.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def server_message(error: DBAPIError) -> str:
    """PostgreSQL's own message (it quotes names, never the password)."""
    return str(error.orig).splitlines()[0] if error.orig is not None else type(error).__name__


def server_address(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or DEFAULT_PORT}"


def createdb_command(url: URL, *, as_user: str | None = None) -> str:
    """The shell command that creates the database `url` names, owned by its user."""
    command = ["createdb"]
    if url.host:
        command += ["-h", url.host]
    command += ["-p", str(url.port or DEFAULT_PORT)]
    if as_user and as_user != url.username:
        command += ["-U", as_user, "-O", url.username or as_user]
    elif url.username:
        command += ["-U", url.username]
    return shlex.join([*command, url.database or ""])


def quote_identifier(name: str) -> str:
    """PostgreSQL's quoting: the name is taken literally, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


async def execute_once(url: URL, statement: str, connect_timeout: float) -> None:
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": connect_timeout},
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def create_database_if_missing(settings: Settings) -> str | None:
    """Create the database DATABASE_URL names when the server says it does not exist.

    Returns what was created, for the user to read, or None when the database was there.
    CREATE DATABASE runs in the server's maintenance database with the same credentials; when
    that fails, the ExplainedDatabaseError gives the createdb command to run instead.
    """
    url = make_url(settings.database_url.get_secret_value())
    timeout = settings.database_pool_timeout_seconds
    try:
        await execute_once(url, "SELECT 1", timeout)
    except DBAPIError as error:
        if sqlstate(error) != DATABASE_MISSING or not url.database:
            raise
    else:
        return None
    statement = f"CREATE DATABASE {quote_identifier(url.database)}"
    try:
        await execute_once(url.set(database=MAINTENANCE_DATABASE), statement, timeout)
    except DBAPIError as error:
        if sqlstate(error) == DATABASE_EXISTS:
            return None  # another process created it a moment ago
        raise ExplainedDatabaseError(cannot_create_message(url, error)) from error
    return f'the database "{url.database}" on {server_address(url)}'


def cannot_create_message(url: URL, error: DBAPIError) -> str:
    missing = f'the database "{url.database}" does not exist on {server_address(url)}'
    if sqlstate(error) == PERMISSION_DENIED:
        return (
            f'{missing}, and user "{url.username}" may not create databases. A user who may '
            f"(such as postgres) can create it for {url.username}:\n"
            f"    {createdb_command(url, as_user='postgres')}"
        )
    return (
        f"{missing}, and creating it failed ({server_message(error)}). Create it with:\n"
        f"    {createdb_command(url)}"
    )


@contextmanager
def explained_failures(settings: Settings, command_prefix: str) -> Iterator[None]:
    """Turn the driver's errors into a ExplainedDatabaseError naming the real cause.

    `command_prefix` is how the user runs this package's commands, for the advice to run one.
    """
    url = make_url(settings.database_url.get_secret_value())
    where = server_address(url)
    try:
        yield
    except DBAPIError as error:
        code = sqlstate(error)
        if code in AUTHENTICATION_FAILED:
            message = (
                f'PostgreSQL at {where} refused user "{url.username}": authentication failed '
                f"({server_message(error)}). Check the user and password in DATABASE_URL."
            )
        elif code == DATABASE_MISSING:
            message = (
                f'the database "{url.database}" does not exist on {where}; '
                f"`{command_prefix} migrate` creates it."
            )
        elif code in NOT_MIGRATED:
            message = (
                f'the database "{url.database}" on {where} is not migrated '
                f"({server_message(error)}); run `{command_prefix} migrate` first."
            )
        else:
            raise
        raise ExplainedDatabaseError(message) from error
    except OSError as error:  # refused, unknown host, timed out (TimeoutError is an OSError)
        reason = str(error) or type(error).__name__
        raise ExplainedDatabaseError(
            f"PostgreSQL at {where} is unreachable ({reason}). Start the server, or point "
            "DATABASE_URL at one that runs."
        ) from error
