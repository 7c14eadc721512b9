"""SQLite through aiosqlite: an embedded file, no server to run."""

from sqlite3 import Connection

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from {{ cookiecutter.project_slug }}.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        connect_args={"timeout": settings.database_pool_timeout_seconds},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def configure_connection(connection: Connection, _record: ConnectionPoolEntry) -> None:
        cursor = connection.cursor()
        # SQLite leaves foreign keys unenforced unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers proceed while a writer commits.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine
