import os
from collections.abc import Callable

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
{%- if cookiecutter.database == "postgresql" %}
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
{%- endif %}

from {{ cookiecutter.project_slug }}.cache.memory import CacheInUseError, MemoryStore
{%- if cookiecutter.database == "postgresql" %}
from {{ cookiecutter.project_slug }}.db.postgresql_lock import LOCK_ID, LOCK_SPACE
{%- else %}
from {{ cookiecutter.project_slug }}.db.sqlite_lock import DatabaseLock
{%- endif %}
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
{% if cookiecutter.database == "postgresql" %}
from tests.conftest import MakeUser, bearer, running, wait_until
{%- else %}
from tests.conftest import SettingsFactory, running
{%- endif %}

pytestmark = pytest.mark.anyio


async def test_the_backend_stores_and_returns_bytes(app: FastAPI) -> None:
    store = app.state.cache.store

    await store.set("round-trip", b"\x00cached bytes", 30)

    assert await store.get_many(["round-trip"]) == [b"\x00cached bytes"]


async def test_each_application_instance_has_its_own_cache(settings: Settings) -> None:
    first, second = create_app(), create_app()
    for application in (first, second):
        application.dependency_overrides[get_settings] = lambda: settings

    async with LifespanManager(first):
        await first.state.cache.store.set("shared?", b"first", 30)
    async with LifespanManager(second):
        assert await second.state.cache.store.get_many(["shared?"]) == [None]


async def test_entries_expire_after_their_ttl() -> None:
    clock = [1000.0]
    store = MemoryStore(max_entries=10, clock=lambda: clock[0])

    await store.set("short", b"value", 5)
    await store.set("long", b"value", 60)
    clock[0] += 4.5
    assert await store.get_many(["short"]) == [b"value"]

    clock[0] += 1
    assert await store.get_many(["short", "long"]) == [None, b"value"]


async def test_the_least_recently_used_entry_goes_when_full() -> None:
    store = MemoryStore(max_entries=2)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    await store.get_many(["a"])

    await store.set("c", b"3", 60)

    assert await store.get_many(["b", "a", "c"]) == [None, b"1", b"3"]


async def test_a_second_instance_on_the_same_database_refuses_to_start(
    settings: Settings, make_app: Callable[[Settings], FastAPI]
) -> None:
    """Another worker or server would keep copies this one's writes cannot reach."""
    async with running(make_app(settings)):
        with pytest.raises(CacheInUseError) as refused:
            async with running(make_app(settings)):
                pass
    # Once the first one stopped, its lock is free.
    async with running(make_app(settings)) as client:
        ready = await client.get("/health/ready")

    message = str(refused.value)
    assert message.startswith("cache_backend=memory serves one process per database")
    assert f"{os.getpid()}" in message  # which process holds the lock
    assert "generate the project with cache_backend=redis or memcached" in message
    assert ready.status_code == 200
{%- if cookiecutter.database == "sqlite" %}


async def test_an_in_memory_database_needs_no_lock(make_settings: SettingsFactory) -> None:
    """Each connection to it is a database of its own: no other process can write it."""
    settings = make_settings(database_url="sqlite+aiosqlite:///:memory:")
    first, second = (DatabaseLock(settings, on_lost=lambda: None) for _ in range(2))

    assert await first.take() is None
    assert await second.take() is None
    assert first.path is None
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}


async def test_an_instance_that_lost_the_lock_serves_nothing_it_cached(
    app: FastAPI, client: AsyncClient, settings: Settings, make_user: MakeUser
) -> None:
    """Its session ended and another process took the lock: that one's writes cannot reach this
    cache, so it answers from the database and refuses writes until it holds the lock again."""
    _, token = await make_user("alice")
    created = await client.post("/api/items", json={"name": "before"}, headers=bearer(token))
    item = f"/api/items/{created.json()['id']}"
    await client.get(item, headers=bearer(token))
    cached = await client.get(item, headers=bearer(token))
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as other_process:
            # The lock goes straight from the ended session to this one.
            await other_process.execute(
                text(
                    "SELECT pg_terminate_backend(pid), pg_advisory_lock(:space, :id)"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name LIKE '%cache lock, pid%'"
                ),
                {"space": LOCK_SPACE, "id": LOCK_ID},
            )
            await wait_until(lambda: not app.state.cache.store.usable)
            await other_process.execute(text("UPDATE items SET name = 'changed elsewhere'"))
            await other_process.commit()
            during = await client.get(item, headers=bearer(token))
            write = await client.put(item, json={"name": "refused"}, headers=bearer(token))
            ready = await client.get("/health/ready")
            await other_process.execute(
                text("SELECT pg_advisory_unlock(:space, :id)"),
                {"space": LOCK_SPACE, "id": LOCK_ID},
            )
    finally:
        await engine.dispose()
    await wait_until(lambda: app.state.cache.store.usable)

    assert cached.headers["x-fastapi-cache"] == "HIT"
    assert during.json()["name"] == "changed elsewhere"
    assert during.headers["x-fastapi-cache"] == "MISS"
    assert write.status_code == 503
    assert ready.json()["failing"] == ["cache"]
{%- endif %}
