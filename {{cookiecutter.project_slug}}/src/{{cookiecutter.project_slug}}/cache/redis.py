"""Redis: one client with a connection pool for the whole process, shared by every request."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.settings import Settings


class RedisStore:
    def __init__(self, client: Redis) -> None:
        self.client = client

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        # One round trip for both; without transaction=False, MULTI/EXEC would add two commands.
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.ttl(key)
            pipe.get(key)
            ttl, value = await pipe.execute()
        return max(int(ttl), 0), value

    async def get(self, key: str) -> bytes | None:
        # bytes, never str: the client is created with decode_responses=False.
        return cast("bytes | None", await self.client.get(key))

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        await self.client.set(key, value, ex=expire)

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def add(self, key: str, value: int, expire: int | None = None) -> bool:
        return bool(await self.client.set(key, value, ex=expire, nx=True))

    async def incr(self, key: str) -> int:
        return int(await self.client.incr(key))

    async def get_int(self, key: str) -> int | None:
        value = await self.client.get(key)
        return None if value is None else int(value)


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
        yield CacheConnection(store=RedisStore(client), ping=ping)
    finally:
        await client.aclose()
