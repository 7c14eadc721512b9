"""A full Redis (`maxmemory` under `noeviction`) refuses every store: seen, counted, never stale."""

import logging
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from {{ cookiecutter.project_slug }}.metrics import CACHE_REFUSED_STORES
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache.redis_service import private_server
from tests.conftest import MakeUser, SettingsFactory, bearer, running
from tests.ports import unused_tcp_port


@pytest.fixture
async def full_redis() -> AsyncIterator[str]:
    """A private redis-server of 2 MB that refuses writes once full, filled up."""
    options = ("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    async with private_server(unused_tcp_port(), *options) as url:
        client = Redis.from_url(url)
        try:
            filler = b"x" * 10_000
            for index in range(1_000):
                try:
                    await client.set(f"filler:{index}", filler)
                except OutOfMemoryError:
                    break
            else:
                pytest.fail("redis-server with maxmemory 2mb never refused a write")
        finally:
            await client.aclose()
        yield url


async def test_refused_stores_are_logged_once_counted_and_never_stale(
    full_redis: str,
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, token = await make_user("alice")
    async with running(make_app(make_settings())) as client:  # the usual Redis: room to write
        created = await client.post("/api/items", json={"name": "v0"}, headers=bearer(token))
    path = f"/api/items/{created.json()['id']}"
    settings = make_settings(
        redis_url=full_redis,
        redis_cluster=False,  # one private server, also when the suite runs against a cluster
        cache_warning_interval_seconds=3600,
    )
    refused_before = CACHE_REFUSED_STORES.labels("write")._value.get()
    with caplog.at_level(logging.WARNING):
        async with running(make_app(settings)) as client:
            reads = [await client.get(path, headers=bearer(token)) for _ in range(4)]
            # A write's new version cannot be stored either: it answers 503 and changes nothing.
            refused = await client.put(path, json={"name": "v1"}, headers=bearer(token))
            after = await client.get(path, headers=bearer(token))
    assert [read.headers["x-fastapi-cache"] for read in reads] == ["MISS"] * 4
    assert [read.json()["name"] for read in reads] == ["v0"] * 4
    assert refused.status_code == 503
    assert after.json()["name"] == "v0"
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert CACHE_REFUSED_STORES.labels("write")._value.get() >= refused_before + 4
