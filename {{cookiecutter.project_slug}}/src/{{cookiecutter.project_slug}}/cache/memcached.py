"""Memcached through aiomcache: one client with a sized connection pool per process.

fastapi-cache2's MemcachedBackend is not used: it reports every entry's remaining lifetime as
3600 s (so HITs advertise `max-age=3600` whatever the real TTL) and cannot add or increment.
"""

import math
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiomcache import Client

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.settings import Settings

MEMCACHED_DEFAULT_PORT = 11211
# Cached values carry their expiry time in front, so a HIT can tell its remaining lifetime.
EXPIRY = struct.Struct(">d")


class MemcachedStore:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        stored = await self.client.get(key.encode())
        if stored is None or len(stored) < EXPIRY.size:
            return 0, None
        (expires_at,) = EXPIRY.unpack_from(stored)
        return max(math.ceil(expires_at - time.time()), 0), stored[EXPIRY.size :]

    async def get(self, key: str) -> bytes | None:
        return (await self.get_with_ttl(key))[1]

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        expires_at = time.time() + expire if expire else math.inf
        await self.client.set(key.encode(), EXPIRY.pack(expires_at) + value, exptime=expire or 0)

    async def delete(self, key: str) -> None:
        await self.client.delete(key.encode())

    async def add(self, key: str, value: int, expire: int | None = None) -> bool:
        return await self.client.add(key.encode(), str(value).encode(), exptime=expire or 0)

    async def incr(self, key: str) -> int:
        value = await self.client.incr(key.encode())
        if value is None:
            raise KeyError(key)
        return value

    async def get_int(self, key: str) -> int | None:
        value = await self.client.get(key.encode())
        return None if value is None else int(value)


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
        yield CacheConnection(store=MemcachedStore(client), ping=ping)
    finally:
        await client.close()
