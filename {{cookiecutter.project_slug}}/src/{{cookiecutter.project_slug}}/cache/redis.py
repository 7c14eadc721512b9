"""Redis: one client with a connection pool for the whole process, shared by every request.

A second connection holds this worker's subscription to the invalidation channel, through which
every worker keeps its local tier (local.py) current.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import cast

from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
)
from {{ cookiecutter.project_slug }}.cache.local import LocalTier
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)

# After the channel broke, subscribe again this much later (meanwhile the local tier is off).
RESUBSCRIBE_SECONDS = 1.0
# An idle subscription is checked (PING) this often, so a dead connection does not go unnoticed.
SUBSCRIPTION_CHECK_SECONDS = 5

# One atomic step: the new version, the count of writes in flight, its expiry, and the message
# that makes every worker drop its local copy, all before the writer gets its reply.
BUMP_SCRIPT = """
local state = redis.call('GET', KEYS[1])
local pending = 0
if state then pending = tonumber(string.match(state, ' (%d+)$')) or 0 end
pending = math.max(pending + tonumber(ARGV[2]), 0)
local ttl = ARGV[4]
if pending > 0 then ttl = ARGV[3] end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. pending, 'EX', ttl)
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], KEYS[1]) end
return pending
"""


class RedisStore:
    def __init__(self, client: Redis, channel: str) -> None:
        self.client = client
        self.channel = channel
        self.bump_script = client.register_script(BUMP_SCRIPT)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # bytes, never str: the client is created with decode_responses=False.
        return cast("list[bytes | None]", await self.client.mget(keys))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self.client.set(key, value, ex=ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(await self.client.set(key, value, ex=ttl, nx=True))

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        args = [version, pending_delta, PENDING_WRITE_SECONDS, SETTLED_VERSION_SECONDS]
        await self.bump_script(keys=[state_key], args=[*args, self.channel])

    async def ping(self) -> None:
        await self.client.ping()

    def after_timeout(self) -> None:
        """redis-py drops a connection whose command was interrupted: nothing to do."""


async def listen(subscriber: Redis, channel: str, local: LocalTier) -> None:
    """Apply every invalidation message to `local` until cancelled, resubscribing after failures."""
    while True:
        try:
            async with subscriber.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(timeout=SUBSCRIPTION_CHECK_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        local.connected()
                    elif message["type"] == "message":
                        local.forget(message["data"].decode())
        except Exception as error:  # the channel is down: local copies go off until it is back
            if local.enabled:  # said once when it breaks, not at every attempt to resubscribe
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
        # Values are bytes; with decoded responses every stored response would be mangled.
        decode_responses=False,
        # A new connection may take longer than a command on a busy host; what a request waits
        # is bounded by CACHE_TIMEOUT_SECONDS anyway (cache/guard.py).
        socket_connect_timeout=settings.health_check_timeout_seconds,
        # A subscription waits for messages indefinitely; its health checks find dead links.
        socket_timeout=None if subscriber else settings.cache_timeout_seconds,
        health_check_interval=SUBSCRIPTION_CHECK_SECONDS if subscriber else 0,
        # Named in CLIENT LIST, so the service's connections can be told apart.
        client_name=f"{settings.cache_prefix}:invalidations"
        if subscriber
        else settings.cache_prefix,
    )


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[RedisStore, LocalTier | None]]:
    client = create_client(settings)
    channel = f"{settings.cache_prefix}:invalidations"
    local = LocalTier(settings.local_cache_max_bytes) if settings.local_cache_max_bytes else None
    subscriber = create_client(settings, subscriber=True)
    listener = None if local is None else asyncio.create_task(listen(subscriber, channel, local))
    try:
        yield RedisStore(client, channel), local
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await subscriber.aclose()
        await client.aclose()
