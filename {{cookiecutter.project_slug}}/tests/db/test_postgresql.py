import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running
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
