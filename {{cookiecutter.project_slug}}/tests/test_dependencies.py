"""FastAPI's dependency semantics the project relies on, pinned with probe routes on a real app."""

import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
import pytest
from fastapi import APIRouter, Depends, FastAPI
from httpx import AsyncClient
from sqlalchemy import event

from {{ cookiecutter.project_slug }}.api.deps import CurrentUserDep, RequestIdDep
from {{ cookiecutter.project_slug }}.api.items import ItemsReaderDep
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.webhooks import EventIdDep

from tests.conftest import MakeUser, bearer, running, wait_until

pytestmark = pytest.mark.anyio

CONCURRENT_REQUESTS = 4
MAX_CONCURRENCY = 2
WAIT_SECONDS = 10


class Gate:
    """Blocks sync dependencies in worker threads until the test opens it, counting who waits."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def pass_through(self) -> None:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            if not self.opened.wait(WAIT_SECONDS):
                raise TimeoutError("the gate was never opened")
        finally:
            with self.lock:
                self.inside -= 1


def probe_router(blocking: Gate, limited: Gate) -> APIRouter:
    router = APIRouter(prefix="/probe")

    async def audit_record(request_id: RequestIdDep, event_id: EventIdDep) -> tuple[str, str]:
        return request_id, event_id

    @router.get("/ids")
    async def ids(
        request_id: RequestIdDep,
        first_event: EventIdDep,
        second_event: EventIdDep,
        audit: Annotated[tuple[str, str], Depends(audit_record)],
    ) -> dict[str, list[str]]:
        return {
            "request_ids": [request_id, audit[0]],
            "event_ids": [first_event, second_event, audit[1]],
        }

    async def reader_name(user: ItemsReaderDep) -> str:
        return user.name

    @router.get("/user")
    async def user_twice(user: CurrentUserDep, name: Annotated[str, Depends(reader_name)]) -> str:
        return f"{user.name}={name}"

    def blocking_work() -> None:
        blocking.pass_through()  # a plain `def`: FastAPI runs it in a worker thread

    @router.get("/blocking", dependencies=[Depends(blocking_work)])
    async def blocking_route() -> str:
        return "done"

    def expensive_work() -> None:
        limited.pass_through()

    @router.get("/limited", dependencies=[Depends(expensive_work, max_concurrency=MAX_CONCURRENCY)])
    async def limited_route() -> str:
        return "done"

    return router


@pytest.fixture
def blocking() -> Gate:
    return Gate()


@pytest.fixture
def limited() -> Gate:
    return Gate()


@pytest.fixture
async def probe_client(
    make_app: Callable[[Settings], FastAPI], settings: Settings, blocking: Gate, limited: Gate
) -> AsyncIterator[AsyncClient]:
    app = make_app(settings)
    app.include_router(probe_router(blocking, limited))
    async with running(app) as client:
        yield client


async def test_a_dependency_is_resolved_once_per_request_unless_use_cache_is_false(
    probe_client: AsyncClient,
) -> None:
    first = (await probe_client.get("/probe/ids")).json()
    second = (await probe_client.get("/probe/ids")).json()

    # Cached per request: every dependant of RequestIdDep saw the same value...
    assert len(set(first["request_ids"])) == 1
    # ...but not across requests.
    assert first["request_ids"] != second["request_ids"]
    # use_cache=False: each injection got its own event id, even within one request.
    assert len(set(first["event_ids"] + second["event_ids"])) == 6


async def test_the_user_is_looked_up_once_however_many_dependencies_need_it(
    make_app: Callable[[Settings], FastAPI], settings: Settings, make_user: MakeUser
) -> None:
    _, token = await make_user("gina")
    app = make_app(settings)
    app.include_router(probe_router(Gate(), Gate()))
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    async with running(app) as client:
        engine = app.state.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            response = await client.get("/probe/user", headers=bearer(token))
        finally:
            event.remove(engine, "before_cursor_execute", record)

    assert response.json() == "gina=gina"
    assert sum("FROM users" in statement for statement in statements) == 1


async def test_a_blocking_sync_dependency_runs_in_threads_and_leaves_the_loop_free(
    probe_client: AsyncClient, blocking: Gate
) -> None:
    results: list[int] = []

    async def call() -> None:
        results.append((await probe_client.get("/probe/blocking")).status_code)

    async with anyio.create_task_group() as requests:
        for _ in range(CONCURRENT_REQUESTS):
            requests.start_soon(call)
        # All of them are blocked at once, each in its own thread...
        await wait_until(lambda: blocking.inside == CONCURRENT_REQUESTS)
        # ...and the event loop still answers other requests meanwhile.
        assert (await probe_client.get("/health/live")).status_code == 200
        blocking.opened.set()

    assert results == [200] * CONCURRENT_REQUESTS


async def test_max_concurrency_lets_only_that_many_run_at_once(
    probe_client: AsyncClient, limited: Gate
) -> None:
    results: list[int] = []

    async def call() -> None:
        results.append((await probe_client.get("/probe/limited")).status_code)

    async with anyio.create_task_group() as requests:
        for _ in range(CONCURRENT_REQUESTS):
            requests.start_soon(call)
        await wait_until(lambda: limited.inside == MAX_CONCURRENCY)
        # Give the others every chance to get in, if the limit did not hold them back.
        await anyio.sleep(0.2)
        assert limited.inside == MAX_CONCURRENCY
        limited.opened.set()

    assert results == [200] * CONCURRENT_REQUESTS
    assert limited.peak == MAX_CONCURRENCY
