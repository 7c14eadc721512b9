"""A cache server shared by several processes: one computation per key, and outages survived."""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.cache import {{ cookiecutter.cache_backend }} as cache_store
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.flight import leading
from {{ cookiecutter.project_slug }}.cache.guard import CacheUnavailableError, Guard
from {{ cookiecutter.project_slug }}.cache.keys import namespace_key
from {{ cookiecutter.project_slug }}.context import current_request_id
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache import outage_proxy
from tests.cache.{{ cookiecutter.cache_backend }}_service import server_address, settings_for_server
from tests.conftest import SettingsFactory, running, wait_until
from tests.ports import unused_tcp_port
from tests.upstream import running_upstream

pytestmark = pytest.mark.anyio


@contextmanager
def request_ids_logged() -> Iterator[dict[logging.LogRecord, str | None]]:
    """The request id current when each record was logged (log lines are formatted with it)."""
    logged: dict[logging.LogRecord, str | None] = {}

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged[record] = current_request_id()

    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    try:
        yield logged
    finally:
        logging.getLogger().removeHandler(recorder)


async def test_the_service_starts_and_serves_with_the_cache_unreachable(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory, alice: dict[str, str]
) -> None:
    app = make_app(make_settings(**settings_for_server("127.0.0.1", unused_tcp_port())))
    async with running(app) as client:
        ready = await client.get("/health/ready")
        items = [await client.get("/api/items", headers=alice) for _ in range(3)]

    assert [item.status_code for item in items] == [200] * 3
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["cache"]
    assert ready.json()["checks"] == {"database": "ok", "cache": "failing"}


async def test_cold_misses_in_two_processes_compute_once(settings: Settings) -> None:
    """Two backends with clients of their own stand for two worker processes."""
    key = f"{namespace_key(settings.cache_prefix, 'shared', 'stampede')}:cold"
    runs = 0

    async def request(cache: ResponseCache) -> bytes:
        nonlocal runs
        with leading():
            _, value = await cache.get_with_ttl(key)
            if value is None:
                runs += 1
                await asyncio.sleep(0.3)  # the endpoint's work
                value = b"computed"
                await cache.set(key, value, expire=30)
        return value

    async with (
        cache_store.open_store(settings) as (first, _),
        cache_store.open_store(settings) as (second, _),
    ):
        caches = [
            ResponseCache(
                store,
                Guard(timeout_seconds=2, breaker_seconds=1, warning_interval_seconds=30),
                prefix=settings.cache_prefix,
                lock_seconds=5,
            )
            for store in (first, second)
        ]
        results = await asyncio.gather(*(request(caches[n % 2]) for n in range(50)))

    assert results == [b"computed"] * 50
    assert runs == 1


async def test_an_outage_serves_200s_warns_once_and_caching_resumes(
    make_app: Callable[[Settings], FastAPI],
    make_settings: SettingsFactory,
    alice: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = outage_proxy.OutageProxy(*server_address())
    await proxy.start()
    settings = make_settings(**settings_for_server("127.0.0.1", proxy.port))
    app = make_app(settings)
    async with running(app) as client:
        await client.get("/api/items", headers=alice)
        assert (await client.get("/api/items", headers=alice)).headers["x-fastapi-cache"] == "HIT"

        await proxy.cut()
        local = app.state.cache.local
        if local is not None:
            # The worker notices the lost subscription and stops answering from its copy.
            await wait_until(lambda: not local.enabled)
        with caplog.at_level(logging.WARNING), request_ids_logged() as logged:
            during = [
                await client.get("/api/items", headers=alice | {"X-Request-ID": f"outage-{n}"})
                for n in range(20)
            ]
            ready = await client.get("/health/ready")

        await proxy.start()
        # Caching resumes once the breaker closes: its period, jitter (+20 %) and a margin.
        deadline = time.monotonic() + settings.cache_breaker_seconds * 1.2 + 5
        while time.monotonic() < deadline:
            await client.get("/api/items", headers=alice)
            resumed = await client.get("/api/items", headers=alice)
            if resumed.headers["x-fastapi-cache"] == "HIT":
                break
            await asyncio.sleep(0.1)
    await proxy.cut()

    assert [response.status_code for response in during] == [200] * 20
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["cache"]
    cache_warnings = [r for r in caplog.records if r.name.endswith("cache.guard")]
    assert len(cache_warnings) == 1
    assert cache_warnings[0].exc_info is None
    # Logged by the edge's lookup, in front of the middleware, with the request's own id.
    assert logged[cache_warnings[0]] == "outage-0"
    assert resumed.headers["x-fastapi-cache"] == "HIT"


async def test_a_write_is_tried_while_the_breaker_is_open_and_closes_it(
    make_app: Callable[[Settings], FastAPI],
    make_settings: SettingsFactory,
    alice: dict[str, str],
) -> None:
    """One failed call opens the breaker; a write does not wait out the breaker period to be
    confirmed once the server answers again, and its success lets reads use the cache."""
    proxy = outage_proxy.OutageProxy(*server_address())
    await proxy.start()
    settings = make_settings(
        **settings_for_server("127.0.0.1", proxy.port), cache_breaker_seconds=600
    )
    app = make_app(settings)
    async with running(app) as client:
        cache = app.state.cache
        await proxy.cut()
        with pytest.raises(CacheUnavailableError):
            await cache.ping()
        assert cache.guard.is_open
        await proxy.start()
        for _ in range(50):  # a pooled connection the cut closed may fail one call first
            created = await client.post("/api/items", json={"name": "lamp"}, headers=alice)
            if created.status_code != 503:
                break
            await asyncio.sleep(0.1)
        reopened = cache.guard.is_open
    await proxy.cut()

    assert created.status_code == 201, created.text
    assert not reopened


async def test_an_upstream_answer_is_shared_by_every_instance(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    async with running_upstream() as upstream:
        upstream.status_code, upstream.body = 200, b'{"status":"green"}'
        settings = make_settings(upstream_status_url=f"{upstream.url}/status")
        answers = []
        for _ in range(2):  # two instances, as two workers or two hosts would be
            async with running(make_app(settings)) as client:
                answers.append(await client.get("/api/upstream"))

    assert [answer.json() for answer in answers] == [{"status": "green"}] * 2
    assert len(upstream.received) == 1
