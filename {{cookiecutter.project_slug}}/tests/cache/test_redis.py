import asyncio
from collections.abc import Callable
from typing import cast

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import RedisCluster

from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.guard import Guard
from {{ cookiecutter.project_slug }}.cache.keys import namespace_key, user_partition
from {{ cookiecutter.project_slug }}.cache.redis import open_store
from {{ cookiecutter.project_slug }}.db.models import Item
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache.redis_service import check_cache_server, observer_client, private_server
from tests.conftest import SettingsFactory, running, wait_until
from tests.ports import unused_tcp_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """Local copies on (they are off by default), with a lease a loaded machine renews."""
    return make_settings(local_cache_max_bytes=1024 * 1024, local_cache_lease_seconds=1.0)


async def connections_named(name: str) -> int:
    """How many connections by that name the server (on a cluster, all its nodes) holds."""
    observer = observer_client()
    try:
        if isinstance(observer, RedisCluster):
            await observer.initialize()
            # One list per node when sent to several.
            by_node = cast(
                "dict[str, list[dict[str, str]]]",
                await observer.client_list(target_nodes=RedisCluster.ALL_NODES),
            )
            clients = [client for listed in by_node.values() for client in listed]
        else:
            clients = await observer.client_list()
        return sum(1 for client in clients if client["name"] == name)
    finally:
        await observer.aclose()


async def masters() -> int:
    """The nodes one pooled connection each is kept to: 1, or a cluster's masters."""
    observer = observer_client()
    try:
        if isinstance(observer, RedisCluster):
            await observer.initialize()
            return len(observer.get_primaries())
        return 1
    finally:
        await observer.aclose()


async def test_the_shared_client_is_closed_at_shutdown(
    make_app: Callable[[Settings], FastAPI], settings: Settings
) -> None:
    app = make_app(settings)
    subscriber = f"{settings.cache_prefix}:invalidations"
    async with running(app) as client:
        for _ in range(5):
            await client.get("/health/ready")
        while_running = await connections_named(settings.cache_prefix)
        await wait_until(app.state.cache.local.usable)
        subscribed = await connections_named(subscriber)

    # Sequential requests reuse one pooled connection (per master: readiness pings them all)
    # rather than opening one each; the local tier listens to every master.
    assert while_running == await masters()
    assert subscribed == await masters()
    assert await connections_named(settings.cache_prefix) == 0
    assert await connections_named(subscriber) == 0


async def test_another_workers_write_reaches_this_workers_local_copy(
    app: FastAPI, client: AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    """Another worker is stood for by a backend with Redis clients of its own."""
    await wait_until(app.state.cache.local.usable)
    me = (await client.get("/api/me", headers=alice)).json()
    for _ in range(3):
        await client.get("/api/items", headers=alice)
    local = app.state.cache.local
    # The other worker's write: marked in flight, the row committed, then a new version.
    state = f"{namespace_key(settings.cache_prefix, user_partition(me['id']), 'items')}:state"
    async with open_store(settings) as (store, _):
        other = ResponseCache(
            store,
            Guard(timeout_seconds=2, breaker_seconds=1, warning_interval_seconds=30),
            prefix=settings.cache_prefix,
            lock_seconds=5,
        )
        async with app.state.database.sessionmaker() as session:
            session.add(Item(owner_id=me["id"], name="from another worker"))
            await session.commit()
        unannounced = await client.get("/api/items", headers=alice)
        generation = local.generation
        await other.begin_write(state)
        await other.end_write(state)
    await wait_until(lambda: local.generation > generation)

    announced = await client.get("/api/items", headers=alice)

    assert unannounced.json() == []  # the local copy was in use
    assert [item["name"] for item in announced.json()] == ["from another worker"]


async def test_a_redis_restart_costs_no_failed_call(make_settings: SettingsFactory) -> None:
    """The pooled connections die with the server. Were the first call on each to fail, every
    worker would open its breaker (reads uncached meanwhile) or refuse a write after a restart."""
    port = unused_tcp_port()
    # A private server, also when the suite runs against a cluster.
    url = f"redis://127.0.0.1:{port}/0"
    settings = make_settings(redis_url=url, redis_cluster=False, local_cache_max_bytes=0)
    key = f"{settings.cache_prefix}:restart"
    async with open_store(settings) as (store, _):
        async with private_server(port):
            # Calls at once: as many pooled connections.
            await asyncio.gather(*(store.client.set(key, b"before") for _ in range(8)))
        async with private_server(port):  # restarted, empty, on the same port
            answers = await asyncio.gather(
                *(store.client.get(key) for _ in range(8)), return_exceptions=True
            )

    assert answers == [None] * 8


async def test_the_backend_stores_and_returns_bytes(app: FastAPI, settings: Settings) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:round-trip"

    await store.set(key, b"\x00cached bytes", 30)

    assert await store.get_many([key]) == [b"\x00cached bytes"]


def test_the_session_check_passes_while_redis_answers() -> None:
    assert check_cache_server() is None


def test_the_session_check_names_a_closed_port_without_its_password() -> None:
    port = unused_tcp_port()

    message = check_cache_server(f"redis://:pw-that-must-not-leak@127.0.0.1:{port}/0")

    assert message is not None
    assert f"The tests need Redis, and none answers at redis://:***@127.0.0.1:{port}/0" in message
    assert "REDIS_URL" in message
    assert "pw-that-must-not-leak" not in message
