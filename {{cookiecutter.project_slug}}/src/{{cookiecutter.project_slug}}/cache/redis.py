"""Redis: one client with a connection pool for the whole process, shared by every request.

A second client holds this worker's subscription to the invalidation channel, through which
the workers keep their local response caches coherent (see local.py).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection, local_response_cache
from {{ cookiecutter.project_slug }}.cache.local import LocalResponseCache
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)

# After the channel broke, subscribe again this much later (meanwhile the local cache is off).
RESUBSCRIBE_SECONDS = 1.0
# An idle subscription is checked (PING) this often, so a dead connection does not go unnoticed.
SUBSCRIPTION_CHECK_SECONDS = 5


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


class RedisInvalidations:
    def __init__(self, client: Redis, subscriber: Redis, channel: str) -> None:
        self.client = client
        self.subscriber = subscriber
        self.channel = channel

    async def publish(self, message: str) -> None:
        await self.client.publish(self.channel, message)

    async def listen(self, local: LocalResponseCache) -> None:
        while True:
            try:
                async with self.subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    while True:
                        message = await pubsub.get_message(timeout=SUBSCRIPTION_CHECK_SECONDS)
                        if message is None:
                            continue
                        if message["type"] == "subscribe":
                            local.connected()
                        elif message["type"] == "message":
                            local.apply(message["data"].decode())
            except Exception as error:  # the channel is down: local copies go off until it is back
                logger.warning(
                    "cache invalidation channel lost (%s); local copies off until it is back",
                    type(error).__name__,
                )
            finally:
                local.disconnected()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)


def create_client(settings: Settings, *, subscriber: bool = False) -> Redis:
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        # fastapi-cache2 stores bytes; with decoded responses every cache HIT fails with a 500.
        decode_responses=False,
        socket_connect_timeout=settings.health_check_timeout_seconds,
        # A subscription waits for messages indefinitely; its health checks find dead links.
        socket_timeout=None if subscriber else settings.health_check_timeout_seconds,
        health_check_interval=SUBSCRIPTION_CHECK_SECONDS if subscriber else 0,
        # Named in CLIENT LIST, so the service's connections can be told apart.
        client_name=f"{settings.cache_prefix}:invalidations"
        if subscriber
        else settings.cache_prefix,
    )


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[CacheConnection]:
    client = create_client(settings)
    subscriber = create_client(settings, subscriber=True)
    invalidations = RedisInvalidations(client, subscriber, f"{settings.cache_prefix}:invalidations")
    local = local_response_cache(settings.local_cache_max_bytes, settings)
    listener = None if local is None else asyncio.create_task(invalidations.listen(local))

    async def ping() -> None:
        await client.ping()

    try:
        yield CacheConnection(
            store=RedisStore(client), ping=ping, local=local, invalidations=invalidations
        )
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await subscriber.aclose()
        await client.aclose()
