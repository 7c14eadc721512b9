import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.cache.memory import MemoryStore
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

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
