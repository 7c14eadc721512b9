"""Database sessions for requests: shared through `request.state`, committed or rolled back.

`SessionDep` is function-scoped: its exit code runs as soon as the endpoint returns, before the
response is sent. A client that receives a 2xx can rely on the write being committed, and a
failed commit becomes an error response instead of a success followed by a lost write.

`StreamingSessionDep` keeps FastAPI's default request scope: its exit code runs after the
response has been sent, so a streaming response can keep reading through it. Each one holds a
database connection for the whole response, so `max_concurrency` lets only MAX_STREAMING_SESSIONS
run at once per worker; more wait their turn rather than take the pool other requests need.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db.database import DatabaseDep

BEFORE_COMMIT = "before_commit"
AFTER_COMMIT = "after_commit"
MAX_STREAMING_SESSIONS = 4


def before_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` just before the request's session commits; if it raises, roll back."""
    session.info.setdefault(BEFORE_COMMIT, []).append(callback)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the request's session has committed (never if it rolls back)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


async def get_session(request: Request, database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One session per request; commit if the endpoint succeeds, roll back on any exception.

    The session stays on `request.state.session` while the request runs, so middleware,
    exception handlers and other dependencies reach the same one.
    """
    async with database.sessionmaker() as session:
        request.state.session = session
        try:
            yield session
            for callback in session.info.pop(BEFORE_COMMIT, []):
                await callback()
            await session.commit()
            for callback in session.info.pop(AFTER_COMMIT, []):
                await callback()
        except BaseException:
            # HTTPException included: a request that fails writes nothing.
            await session.rollback()
            raise
        finally:
            del request.state.session


async def get_streaming_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A read-only session that stays open until a streaming response has been sent."""
    async with database.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
StreamingSessionDep = Annotated[
    AsyncSession,
    Depends(get_streaming_session, scope="request", max_concurrency=MAX_STREAMING_SESSIONS),
]
