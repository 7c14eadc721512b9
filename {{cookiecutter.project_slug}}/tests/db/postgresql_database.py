"""Test databases on a real PostgreSQL server: created per test session, dropped afterwards.

The server comes from TEST_DATABASE_SERVER_URL (default: the local server, user postgres); the
developer's own database, named in DATABASE_URL, is never touched.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.ports import unused_tcp_port
from tests.servers import CONNECT_TIMEOUT_SECONDS, Server, server_down, server_refused

SERVER_URL = os.environ.get(
    "TEST_DATABASE_SERVER_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
POSTGRESQL = Server(
    "PostgreSQL",
    "TEST_DATABASE_SERVER_URL",
    compose_service="postgres",
    debian_package="postgresql",
)


def check_database_server(url: str = SERVER_URL) -> str | None:
    """None when PostgreSQL accepts a connection at `url`; otherwise what to do about it."""

    async def connect() -> None:
        engine = create_async_engine(url, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(connect())
    except OSError as error:
        return server_down(POSTGRESQL, url, error)
    except DBAPIError as error:
        # The server answered. Its own message, not SQLAlchemy's (which appends SQL and a link).
        return server_refused(POSTGRESQL, url, error.orig or error)
    return None


@asynccontextmanager
async def isolated_database_url() -> AsyncIterator[str]:
    name = f"test_{{ cookiecutter.project_slug }}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def unreachable_database_url() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{unused_tcp_port()}/unreachable"


@asynccontextmanager
async def items_locked(url: str) -> AsyncIterator[None]:
    """Hold the items table locked from a connection of our own: reads and writes wait."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
            yield
            await connection.rollback()
    finally:
        await engine.dispose()
