"""Redis: one client with a connection pool for the whole process, shared by every worker task."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi_cache.backends.redis import RedisBackend
from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.settings import Settings


def create_client(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        # fastapi-cache2 stores bytes; with decoded responses every cache HIT fails with a 500.
        decode_responses=False,
        socket_connect_timeout=settings.health_check_timeout_seconds,
        socket_timeout=settings.health_check_timeout_seconds,
        # Named in CLIENT LIST, so the service's connections can be told apart.
        client_name=settings.cache_prefix,
    )


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[CacheConnection]:
    client = create_client(settings)

    async def ping() -> None:
        await client.ping()

    try:
        yield CacheConnection(backend=RedisBackend(client), ping=ping)
    finally:
        await client.aclose()
