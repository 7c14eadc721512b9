import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.cache.memory import MemoryBackend
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

pytestmark = pytest.mark.anyio


async def test_the_backend_stores_and_returns_bytes(app: FastAPI) -> None:
    backend = app.state.cache.backend

    await backend.set("round-trip", b"\x00cached bytes", expire=30)

    assert await backend.get("round-trip") == b"\x00cached bytes"


async def test_each_application_instance_has_its_own_cache(settings: Settings) -> None:
    first, second = create_app(), create_app()
    for application in (first, second):
        application.dependency_overrides[get_settings] = lambda: settings

    async with LifespanManager(first):
        await first.state.cache.backend.set("shared?", b"first", expire=30)
    async with LifespanManager(second):
        assert await second.state.cache.backend.get("shared?") is None


async def test_entries_expire_after_their_ttl() -> None:
    clock = [1000.0]
    backend = MemoryBackend(max_entries=10, default_ttl_seconds=60, clock=lambda: clock[0])

    await backend.set("short", b"value", expire=5)
    await backend.set("default", b"value")
    clock[0] += 4.5
    assert await backend.get_with_ttl("short") == (1, b"value")

    clock[0] += 1
    assert await backend.get("short") is None
    assert await backend.get("default") == b"value"


async def test_the_least_recently_used_entry_goes_when_full() -> None:
    backend = MemoryBackend(max_entries=2, default_ttl_seconds=60)
    await backend.set("a", b"1")
    await backend.set("b", b"2")
    await backend.get("a")

    await backend.set("c", b"3")

    assert await backend.get("b") is None
    assert [await backend.get(key) for key in ("a", "c")] == [b"1", b"3"]


async def test_clearing_a_namespace_leaves_its_siblings() -> None:
    backend = MemoryBackend(max_entries=10, default_ttl_seconds=60)
    for key in ("app:items:1", "app:items:2", "app:items2:1"):
        await backend.set(key, b"value")

    assert await backend.clear(namespace="app:items") == 2

    assert await backend.get("app:items2:1") == b"value"
    assert await backend.get("app:items:1") is None
