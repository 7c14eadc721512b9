"""The database handle the lifespan opens once and every request shares."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


async def get_database(request: Request) -> Database:
    """The database the lifespan opened (dependency)."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


@asynccontextmanager
async def open_database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """Own `engine` for the application's lifetime and dispose of its pool at shutdown."""
    try:
        # expire_on_commit=False: objects stay readable after commit, when the response is built.
        yield Database(engine, async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()
