"""Memcached through aiomcache: one client with a small connection pool per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiomcache import Client
from fastapi_cache.backends.memcached import MemcachedBackend

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.settings import Settings

MEMCACHED_DEFAULT_PORT = 11211


def create_client(settings: Settings) -> Client:
    url = settings.memcached_url
    return Client(
        url.host or "127.0.0.1",
        url.port or MEMCACHED_DEFAULT_PORT,
        pool_size=settings.memcached_pool_size,
    )


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[CacheConnection]:
    client = create_client(settings)

    async def ping() -> None:
        await client.version()

    try:
        yield CacheConnection(backend=MemcachedBackend(client), ping=ping)
    finally:
        await client.close()
