"""The in-process cache's claim on a PostgreSQL database: an advisory lock on a session of its own.

At most one session holds the lock in each database (cache/memory.py says why). It lasts as
long as that session: the server drops it when the connection closes, however the process
ended. When the session ends under the process (a server restart, a terminated backend), the
driver says so at once and `on_lost` runs; `check` finds a connection that stopped answering.
"""

import os
import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.settings import Settings

# pg_try_advisory_lock(int, int): the first number names this kind of lock, the second this
# service, so other applications' advisory locks in the same database are left alone.
LOCK_SPACE = zlib.crc32(b"in-process cache") & 0x7FFFFFFF
LOCK_ID = zlib.crc32(b"{{ cookiecutter.project_slug }}") & 0x7FFFFFFF
TAKE = text("SELECT pg_try_advisory_lock(:space, :id)")
# The session holding the lock: a two-number advisory lock shows in pg_locks as
# classid, objid and objsubid 2.
HOLDER = text(
    "SELECT activity.application_name, host(activity.client_addr)"
    " FROM pg_locks AS locks JOIN pg_stat_activity AS activity USING (pid)"
    " WHERE locks.locktype = 'advisory' AND locks.granted AND locks.objsubid = 2"
    " AND locks.classid = :space AND locks.objid = :id"
    " AND locks.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
PARAMETERS = {"space": LOCK_SPACE, "id": LOCK_ID}


class DatabaseLock:
    """Held by at most one session in the database DATABASE_URL names."""

    def __init__(self, settings: Settings, on_lost: Callable[[], None]) -> None:
        self.on_lost = on_lost
        self.database = make_url(settings.database_url.get_secret_value()).database
        # pg_stat_activity shows which process holds the lock, for the message of a refused one.
        session_name = f"{settings.database_application_name} cache lock, pid {os.getpid()}"
        self.engine = create_async_engine(
            settings.database_url.get_secret_value(),
            poolclass=NullPool,
            # No transaction is left open: a session-level lock needs none.
            isolation_level="AUTOCOMMIT",
            connect_args={
                "timeout": settings.database_pool_timeout_seconds,
                "command_timeout": settings.database_statement_timeout_seconds,
                "server_settings": {"application_name": session_name},
            },
        )
        self.connection: AsyncConnection | None = None
        self.session: Any = None  # the asyncpg connection under `connection` (asyncpg is untyped)

    @property
    def name(self) -> str:
        return f'the advisory lock on database "{self.database}"'

    async def take(self) -> str | None:
        """Take the lock: None when taken, else who holds it. Raises if the server fails."""
        connection = await self.engine.connect()
        try:
            if await connection.scalar(TAKE, PARAMETERS):
                raw = await connection.get_raw_connection()
                self.session = raw.driver_connection
                self.session.add_termination_listener(self.terminated)
                self.connection = connection
                return None
            holder = (await connection.execute(HOLDER, PARAMETERS)).first()
        finally:
            if self.connection is not connection:
                await connection.close()
        if holder is None:
            return "another session"  # it ended a moment ago, or this role may not see it
        application, address = holder
        return f'the session "{application}" from {address or "a local socket"}'

    def terminated(self, session: Any) -> None:
        if session is self.session:  # not one this lock already let go
            self.on_lost()

    async def check(self) -> None:
        """Raise unless the session holding the lock still answers."""
        if self.connection is None:
            raise ConnectionError("the lock's session is closed")
        await self.connection.exec_driver_sql("SELECT 1")

    async def release(self) -> None:
        """Drop the session, and the lock with it, without waiting on a server that failed."""
        connection, self.connection, self.session = self.connection, None, None
        if connection is not None:
            await connection.invalidate()
            await connection.close()

    async def close(self) -> None:
        """End the session cleanly at shutdown: the server releases the lock at once."""
        connection, self.connection, self.session = self.connection, None, None
        if connection is not None:
            await connection.close()
        await self.engine.dispose()
