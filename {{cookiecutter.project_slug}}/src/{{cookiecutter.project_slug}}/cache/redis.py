"""Redis: one client with a connection pool for the whole process, shared by every request.

A second connection holds this worker's subscription to the invalidation channel, through which
every worker keeps its local tier (local.py) current.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
)
from {{ cookiecutter.project_slug }}.cache.guard import StoreRefusedError
from {{ cookiecutter.project_slug }}.cache.local import LocalTier
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.tracing import tracing_enabled

logger = logging.getLogger(__name__)

# After the channel broke, subscribe again this much later (meanwhile the local tier is off).
RESUBSCRIBE_SECONDS = 1.0
# A subscription whose pings go unanswered this long is dropped and made again.
SILENCE_SECONDS = 5.0

# One atomic step: the new version, the count of writes in flight, its expiry, and the message
# that makes every worker drop its local copy, all before the writer gets its reply. Writes that
# overlap keep the expiry the first one set (KEEPTTL), so a mark left by a write that never
# ended lapses even while other writes keep coming.
BUMP_SCRIPT = """
local state = redis.call('GET', KEYS[1])
local before = 0
if state then before = tonumber(string.match(state, '^%d+ (%d+)')) or 0 end
local pending = math.max(before + tonumber(ARGV[2]), 0)
local value = ARGV[1] .. ' ' .. pending
if pending > 0 and before > 0 then
  redis.call('SET', KEYS[1], value, 'KEEPTTL')
else
  local ttl = ARGV[4]
  if pending > 0 then ttl = ARGV[3] end
  redis.call('SET', KEYS[1], value, 'EX', ttl)
end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], KEYS[1]) end
return pending
"""


class TooFewReplicasError(Exception):
    """A version change did not reach REDIS_MIN_REPLICAS replicas in time."""


class RedisStore:
    def __init__(
        self, client: Redis, channel: str, *, min_replicas: int = 0, wait_ms: int = 0
    ) -> None:
        self.client = client
        self.channel = channel
        self.min_replicas = min_replicas
        self.wait_ms = wait_ms
        self.bump_script = client.register_script(BUMP_SCRIPT)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # bytes, never str: the client is created with decode_responses=False.
        return cast("list[bytes | None]", await self.client.mget(keys))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        try:
            await self.client.set(key, value, ex=ttl)
        except OutOfMemoryError as error:  # maxmemory reached under `noeviction`
            raise StoreRefusedError("Redis is out of memory") from error

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        try:
            return bool(await self.client.set(key, value, ex=ttl, nx=True))
        except OutOfMemoryError as error:
            raise StoreRefusedError("Redis is out of memory") from error

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        args = [version, pending_delta, PENDING_WRITE_SECONDS, SETTLED_VERSION_SECONDS]
        if not self.min_replicas:
            await self.bump_script(keys=[state_key], args=[*args, self.channel])
            return
        # WAIT counts the replicas holding this connection's writes, so it shares the script's
        # connection: one pipeline, one round trip.
        async with self.client.pipeline(transaction=False) as pipeline:
            await self.bump_script(keys=[state_key], args=[*args, self.channel], client=pipeline)
            pipeline.execute_command("WAIT", self.min_replicas, self.wait_ms)
            _, replicas = await pipeline.execute()
        if replicas < self.min_replicas:
            raise TooFewReplicasError(
                f"{replicas} of {self.min_replicas} replicas confirmed a version change"
            )

    async def ping(self) -> None:
        await self.client.ping()

    def after_timeout(self) -> None:
        """redis-py drops a connection whose command was interrupted: nothing to do."""


async def listen(subscriber: Redis, channel: str, local: LocalTier) -> None:
    """Apply every invalidation message to `local` until cancelled, resubscribing after failures.

    A ping every third of a lease renews the lease (local.py); a channel that stops answering
    is dropped and subscribed again.
    """
    interval = local.lease_seconds / 3
    while True:
        try:
            async with subscriber.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                while True:
                    sent_at = time.monotonic()
                    await pubsub.ping(repr(sent_at))
                    while (remaining := sent_at + interval - time.monotonic()) > 0:
                        message = await pubsub.get_message(timeout=remaining)
                        if message is not None:
                            handle(message, local)
                    if local.enabled and time.monotonic() - local.confirmed_at > SILENCE_SECONDS:
                        raise ConnectionError("the invalidation channel stopped answering")
        except Exception as error:  # the channel is down: local copies go off until it is back
            if local.enabled:  # said once when it breaks, not at every attempt to resubscribe
                logger.warning(
                    "cache invalidation channel lost (%s); local copies off until it is back",
                    type(error).__name__,
                )
        finally:
            local.disconnected()
        await asyncio.sleep(RESUBSCRIBE_SECONDS)


def handle(message: dict[str, Any], local: LocalTier) -> None:
    if message["type"] == "subscribe":
        local.connected()
    elif message["type"] == "pong":
        local.confirm(float(message["data"]))  # the send time of the ping it answers
    elif message["type"] == "message":
        local.forget(message["data"].decode())


def create_client(settings: Settings, *, subscriber: bool = False) -> Redis:
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        # Values are bytes; with decoded responses every stored response would be mangled.
        decode_responses=False,
        # A new connection may take longer than a command on a busy host; what a request waits
        # is bounded by CACHE_TIMEOUT_SECONDS anyway (cache/guard.py).
        socket_connect_timeout=settings.health_check_timeout_seconds,
        # A subscription waits for messages indefinitely; its own pings find dead links.
        socket_timeout=None if subscriber else settings.cache_timeout_seconds,
        # Named in CLIENT LIST, so the service's connections can be told apart.
        client_name=f"{settings.cache_prefix}:invalidations"
        if subscriber
        else settings.cache_prefix,
    )


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[RedisStore, LocalTier | None]]:
    client = create_client(settings)
    if tracing_enabled():
        # Imported here: it loads the OpenTelemetry SDK, which a process without tracing skips.
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        # Each command becomes a span such as `MGET ? ?`: the instrumentation records no keys
        # (they hold token digests) and no values.
        RedisInstrumentor.instrument_client(client)
    channel = f"{settings.cache_prefix}:invalidations"
    local = None
    if settings.local_cache_max_bytes:
        local = LocalTier(settings.local_cache_max_bytes, settings.local_cache_lease_seconds)
    subscriber = create_client(settings, subscriber=True)
    listener = None if local is None else asyncio.create_task(listen(subscriber, channel, local))
    # WAIT answers before the cache deadline cuts the call short, so the error says why.
    wait_ms = int(settings.cache_timeout_seconds * 1000 / 2)
    store = RedisStore(client, channel, min_replicas=settings.redis_min_replicas, wait_ms=wait_ms)
    try:
        yield store, local
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await subscriber.aclose()
        await client.aclose()
