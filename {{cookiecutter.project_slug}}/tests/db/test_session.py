"""The request session's lifecycle, pinned with probe routes added to a real app."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.api.deps import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.db.models import Item, User
from {{ cookiecutter.project_slug }}.settings import Settings

pytestmark = pytest.mark.anyio


class Probe:
    """Routes that expose what the session dependencies do, and what they observed."""

    def __init__(self) -> None:
        self.sessions: list[AsyncSession] = []
        self.events: list[str] = []
        self.router = probe_router(self)


def probe_router(probe: Probe) -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.post("/write/{owner_id}")
    async def write_then_fail(owner_id: int, failure: str, session: SessionDep) -> None:
        session.add(Item(owner_id=owner_id, name="must not persist"))
        await session.flush()  # the row reached the database inside the transaction
        probe.sessions.append(session)
        if failure == "http":
            raise HTTPException(409, "conflict after writing")
        raise RuntimeError("crash after writing")

    async def first(session: SessionDep) -> AsyncSession:
        return session

    async def second(session: SessionDep) -> AsyncSession:
        return session

    @router.get("/shared")
    async def shared(
        request: Request,
        first: Annotated[AsyncSession, Depends(first)],
        second: Annotated[AsyncSession, Depends(second)],
    ) -> dict[str, bool]:
        probe.sessions.append(first)
        return {"same": first is second and request.state.session is first}

    async def function_scoped() -> AsyncIterator[str]:
        probe.events.append("function-scoped opened")
        yield "resource"
        probe.events.append("function-scoped closed")

    @router.get("/stream")
    async def stream(
        request: Request,
        session: StreamingSessionDep,
        resource: Annotated[str, Depends(function_scoped, scope="function")],
    ) -> StreamingResponse:
        del resource
        pool = request.app.state.database.engine.pool

        async def chunks() -> AsyncIterator[bytes]:
            probe.events.append("streaming")
            value = await session.scalar(text("SELECT 1"))
            probe.events.append(f"query during stream returned {value}")
            probe.events.append(f"connections checked out: {pool.checkedout()}")
            yield b"done"

        return StreamingResponse(chunks())

    return router


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def probe_app(
    make_app: Callable[[Settings], FastAPI], settings: Settings, probe: Probe
) -> AsyncIterator[FastAPI]:
    app = make_app(settings)
    app.include_router(probe.router)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def probe_client(probe_app: FastAPI) -> AsyncIterator[AsyncClient]:
    # Unhandled errors become 500 responses, as a real server would send.
    transport = ASGITransport(app=probe_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def count_items(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Item)) or 0)


@pytest.mark.parametrize(("failure", "status"), [("http", 409), ("crash", 500)])
async def test_a_request_that_writes_then_fails_leaves_nothing(
    probe_app: FastAPI,
    probe_client: AsyncClient,
    probe: Probe,
    make_user: Callable[[str], Awaitable[tuple[User, str]]],
    failure: str,
    status: int,
) -> None:
    owner, _ = await make_user("writer")

    response = await probe_client.post(f"/probe/write/{owner.id}", params={"failure": failure})

    assert response.status_code == status
    assert await count_items(probe_app) == 0
    # The cleanup after `yield` ran despite the exception: connection back in the pool.
    assert probe_app.state.database.engine.pool.checkedout() == 0
    assert not probe.sessions[0].in_transaction()


async def test_dependencies_share_one_session_per_request_and_requests_do_not(
    probe_app: FastAPI, probe_client: AsyncClient, probe: Probe
) -> None:
    first = await probe_client.get("/probe/shared")
    second = await probe_client.get("/probe/shared")

    assert first.json() == {"same": True}
    assert second.json() == {"same": True}
    assert probe.sessions[0] is not probe.sessions[1]
    assert probe_app.state.database.engine.pool.checkedout() == 0


async def test_a_successful_write_is_committed_before_the_response(
    probe_app: FastAPI,
    probe_client: AsyncClient,
    make_user: Callable[[str], Awaitable[tuple[User, str]]],
) -> None:
    _, token = await make_user("committer")

    response = await probe_client.post(
        "/api/items", json={"name": "kept"}, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 201
    # Read through a different session: the row is committed, not merely flushed.
    assert await count_items(probe_app) == 1
    assert probe_app.state.database.engine.pool.checkedout() == 0


async def test_request_scope_outlives_the_stream_and_function_scope_does_not(
    probe_app: FastAPI, probe_client: AsyncClient, probe: Probe
) -> None:
    response = await probe_client.get("/probe/stream")

    assert response.text == "done"
    assert probe.events == [
        "function-scoped opened",
        "function-scoped closed",
        "streaming",
        "query during stream returned 1",
        "connections checked out: 1",
    ]
    # Once the stream has been sent, the request-scoped session is closed too.
    assert probe_app.state.database.engine.pool.checkedout() == 0
