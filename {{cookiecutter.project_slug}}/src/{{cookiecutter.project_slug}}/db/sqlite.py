"""SQLite through aiosqlite: an embedded file, no server to run."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from {{ cookiecutter.project_slug }}.db.deadlines import report_deadlines_as_busy
from {{ cookiecutter.project_slug }}.db.errors import ExplainedDatabaseError
from {{ cookiecutter.project_slug }}.settings import Settings

# SQLite's messages for a missing table or column: migrations have not (all) run.
NOT_MIGRATED_MESSAGES = ("no such table", "no such column", "has no column named")

# Another connection holds the lock this statement needs (the primary result codes; extended
# ones such as SQLITE_BUSY_SNAPSHOT share their low byte).
BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def hit_deadline(error: BaseException) -> bool:
    if not isinstance(error, sqlite3.OperationalError):
        return False
    return error.sqlite_errorcode & 0xFF in BUSY_CODES


def create_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        pool_timeout=settings.database_pool_timeout_seconds,
        # SQLite's busy timeout: how long a statement waits for another connection's lock.
        connect_args={"timeout": settings.database_statement_timeout_seconds},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def configure_connection(connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        cursor = connection.cursor()
        # SQLite leaves foreign keys unenforced unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers proceed while a writer commits.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    report_deadlines_as_busy(engine, hit_deadline)
    return engine


def database_file(settings: Settings) -> str | None:
    path = make_url(settings.database_url.get_secret_value()).database
    return path if path and path != ":memory:" else None


async def create_database_if_missing(settings: Settings) -> str | None:
    """Create the database file unless it exists (SQLite makes it on the first connection).

    Returns what was created, for the user to read, or None when the file was there.
    """
    path = database_file(settings)
    if path is None or await anyio.Path(path).exists():
        return None
    engine = create_engine(settings)
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()
    return f"the database file {path}"


def cannot_open_message(path: str | None) -> str:
    return (
        f"cannot open the SQLite database file {path}: its directory must exist and be "
        "writable. Create the directory, or change DATABASE_URL."
    )


@contextmanager
def explained_failures(settings: Settings, command_prefix: str) -> Iterator[None]:
    """Turn the driver's errors into an ExplainedDatabaseError naming the real cause.

    `command_prefix` is how the user runs this package's commands, for the advice to run one.
    """
    path = database_file(settings)
    # Checked before connecting: when aiosqlite fails to open a file, its worker thread can
    # outlive the command's event loop and print a traceback of its own.
    if path is not None and not Path(path).parent.is_dir():
        raise ExplainedDatabaseError(cannot_open_message(path))
    try:
        yield
    except OperationalError as error:
        message = str(error.orig)
        if "unable to open database file" in message:
            raise ExplainedDatabaseError(cannot_open_message(path)) from error
        if any(symptom in message for symptom in NOT_MIGRATED_MESSAGES):
            raise ExplainedDatabaseError(
                f"the database file {path} is not migrated ({message}); "
                f"run `{command_prefix} migrate` first."
            ) from error
        raise
