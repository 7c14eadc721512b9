"""SQLite through aiosqlite: an embedded file, no server to run."""

import sqlite3

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from {{ cookiecutter.project_slug }}.db.deadlines import report_deadlines_as_busy
from {{ cookiecutter.project_slug }}.settings import Settings

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
