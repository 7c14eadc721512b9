import time
import uuid
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.api.deps import SessionDep
from {{ cookiecutter.project_slug }}.db.models import Item
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import MakeUser, SettingsFactory, running
from tests.db.postgresql_database import SERVER_URL

pytestmark = pytest.mark.anyio


async def connections_named(application_name: str) -> int:
    observer = create_async_engine(SERVER_URL)
    try:
        async with observer.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            )
            return int(count or 0)
    finally:
        await observer.dispose()


async def test_the_pool_is_sized_from_settings_and_closed_at_shutdown(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory
) -> None:
    application_name = f"test-{uuid.uuid4().hex[:12]}"
    settings = make_settings(database_application_name=application_name, database_pool_size=3)
    app = make_app(settings)
    async with running(app) as client:
        for _ in range(5):
            await client.get("/health/ready")
        pool_size = app.state.database.engine.pool.size()
        while_running = await connections_named(application_name)

    assert pool_size == 3
    # Sequential requests reuse one pooled connection rather than opening one each.
    assert while_running == 1
    assert await connections_named(application_name) == 0


async def test_every_connection_carries_the_database_deadline(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        database_statement_timeout_seconds=1.5, database_pool_timeout_seconds=1
    )
    app = make_app(settings)
    async with running(app), app.state.database.engine.connect() as connection:
        statement_timeout = await connection.scalar(text("SHOW statement_timeout"))
        lock_timeout = await connection.scalar(text("SHOW lock_timeout"))

    assert statement_timeout == lock_timeout == "1500ms"


async def test_a_write_cut_off_by_the_statement_deadline_is_rolled_back(
    make_app: Callable[[Settings], FastAPI],
    make_settings: SettingsFactory,
    make_user: MakeUser,
    database_url: str,
) -> None:
    deadline = 1.0
    router = APIRouter()

    @router.post("/probe/write-then-stall/{owner_id}")
    async def write_then_stall(owner_id: int, session: SessionDep) -> None:
        session.add(Item(owner_id=owner_id, name="half-written"))
        await session.flush()  # the row reached the database inside the transaction
        await session.execute(text("SELECT pg_sleep(30)"))

    user, _ = await make_user("alice")
    app = make_app(
        make_settings(
            database_statement_timeout_seconds=deadline, database_pool_timeout_seconds=deadline
        )
    )
    app.include_router(router)
    async with running(app) as client:
        started = time.monotonic()
        response = await client.post(f"/probe/write-then-stall/{user.id}")
        elapsed = time.monotonic() - started
    observer = create_async_engine(database_url)
    try:
        async with observer.connect() as connection:
            left = await connection.scalar(select(func.count()).select_from(Item))
    finally:
        await observer.dispose()

    assert response.status_code == 503
    assert response.json()["detail"] == "The database is busy; try again shortly"
    assert elapsed < deadline + 2
    assert left == 0
