from collections.abc import Callable

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache.redis_service import REDIS_URL
from tests.conftest import running

pytestmark = pytest.mark.anyio


async def connections_named(name: str) -> int:
    observer = Redis.from_url(REDIS_URL)
    try:
        return sum(1 for client in await observer.client_list() if client["name"] == name)
    finally:
        await observer.aclose()


async def test_the_shared_client_is_closed_at_shutdown(
    make_app: Callable[[Settings], FastAPI], settings: Settings
) -> None:
    app = make_app(settings)
    async with running(app) as client:
        for _ in range(5):
            await client.get("/health/ready")
        while_running = await connections_named(settings.cache_prefix)

    # Sequential requests reuse one pooled connection rather than opening one each.
    assert while_running == 1
    assert await connections_named(settings.cache_prefix) == 0


async def test_the_backend_stores_and_returns_bytes(app: FastAPI, settings: Settings) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:round-trip"

    await store.set(key, b"\x00cached bytes", expire=30)

    assert await store.get(key) == b"\x00cached bytes"
