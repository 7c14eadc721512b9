"""Redis: one client with a connection pool for the whole process, shared by every request.

With REDIS_CLUSTER=true the client is a Redis Cluster client: every key of one partition shares a
hash tag (keys.py), so each call below stays within one slot and one node.

Further connections hold this worker's subscription to the invalidation channel, through which
every worker keeps its local tier (local.py) current: one to the server, or one to each master
of a cluster.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
)

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
)
from {{ cookiecutter.project_slug }}.cache.batching import ReadBatcher
from {{ cookiecutter.project_slug }}.cache.guard import StoreRefusedError
from {{ cookiecutter.project_slug }}.cache.local import LocalTier
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.tracing import tracing_enabled

logger = logging.getLogger(__name__)

# After the channel broke, subscribe again this much later (meanwhile the local tier is off).
RESUBSCRIBE_SECONDS = 1.0
# A subscription whose pings go unanswered this long is dropped and made again.
SILENCE_SECONDS = 5.0
# On a cluster, how often the listener checks that it still listens to every master.
TOPOLOGY_SECONDS = 1.0

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
        self,
        client: Redis | RedisCluster,
        channel: str,
        *,
        min_replicas: int = 0,
        wait_ms: int = 0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.min_replicas = min_replicas
        self.wait_ms = wait_ms
        self.bump_script = client.register_script(BUMP_SCRIPT)
        # A cluster client sends each read to its key's node on its own: one pipeline would
        # span nodes, with retries of its own on a failover.
        self.reads = None if isinstance(client, RedisCluster) else ReadBatcher(self.read_batch)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if self.reads is not None:
            return await self.reads.get_many(keys)
        return await self.read(keys)

    async def read(self, keys: Sequence[str]) -> list[bytes | None]:
        # bytes, never str: the client is created with decode_responses=False.
        return cast("list[bytes | None]", await self.client.mget(keys))

    async def read_batch(self, key_lists: list[Sequence[str]]) -> list[list[bytes | None]]:
        """One MGET per list of keys, in one round trip (batching.py)."""
        if len(key_lists) == 1:
            return [await self.read(key_lists[0])]
        async with self.client.pipeline(transaction=False) as pipeline:
            for keys in key_lists:
                pipeline.mget(keys)
            return cast("list[list[bytes | None]]", await pipeline.execute())

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
        expiries = [PENDING_WRITE_SECONDS, SETTLED_VERSION_SECONDS]
        args: list[int | str] = [version, pending_delta, *expiries, self.channel]
        if not self.min_replicas:
            await self.bump_script(keys=[state_key], args=args)
            return
        if isinstance(self.client, RedisCluster):
            replicas = await self.bump_on_cluster_and_wait(self.client, state_key, args)
        else:
            # WAIT counts the replicas holding this connection's writes, so it shares the
            # script's connection: one pipeline, one round trip.
            async with self.client.pipeline(transaction=False) as pipeline:
                await self.bump_script(keys=[state_key], args=args, client=pipeline)
                pipeline.execute_command("WAIT", self.min_replicas, self.wait_ms)
                _, replicas = await pipeline.execute()
        if replicas < self.min_replicas:
            raise TooFewReplicasError(
                f"{replicas} of {self.min_replicas} replicas confirmed a version change"
            )

    async def bump_on_cluster_and_wait(
        self, cluster: RedisCluster, state_key: str, args: Sequence[int | str]
    ) -> int:
        """The script and WAIT in one pipeline to the key's master, on one connection.

        Both name their node: a command redirected elsewhere (MOVED) would leave WAIT counting
        replicas of a connection that wrote nothing, so a redirection fails the bump instead.
        """
        await cluster.initialize()  # the slot map, read again if a failure made it stale
        node = cluster.get_node_from_key(state_key)
        for _ in range(2):
            async with cluster.pipeline() as pipeline:
                sha = self.bump_script.sha
                pipeline.execute_command("EVALSHA", sha, 1, state_key, *args, target_nodes=node)
                wait = ("WAIT", self.min_replicas, self.wait_ms)
                pipeline.execute_command(*wait, target_nodes=node)
                try:
                    _, replicas = await pipeline.execute(allow_redirections=False)
                except NoScriptError:
                    # A promoted replica has an empty script cache: load it, then run it.
                    await cluster.script_load(BUMP_SCRIPT)
                    continue
                except MovedError as error:
                    await cluster.nodes_manager.move_slot(error)  # the next bump finds it
                    raise
                return cast("int", replicas)
        raise NoScriptError("the version script could not be loaded")

    async def ping(self) -> None:
        """Every master of a cluster must answer: each holds a share of the partitions."""
        await self.client.ping()

    def after_timeout(self) -> None:
        """redis-py drops a connection whose command was interrupted: nothing to do."""


class Subscriptions(Protocol):
    """Where the listener subscribes: the server, or every master of a cluster."""

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[list[PubSub]]:
        """One subscription to `channel` per node that publishes, closed on exit."""
        ...

    async def still_current(self) -> bool:
        """False once the subscriptions no longer cover every node that publishes."""
        ...


class ServerSubscriptions:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[list[PubSub]]:
        url = self.settings.redis_url.get_secret_value()
        client = Redis.from_url(url, **client_options(self.settings, subscriber=True))
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                yield [pubsub]
        finally:
            await client.aclose()

    async def still_current(self) -> bool:
        return True


class ClusterSubscriptions:
    """Classic pub/sub, subscribed on every master.

    The script PUBLISHes on the master of the key it changes. Sharded pub/sub would keep each
    message on that master's shard, but its channel must hash to the key's slot, so a worker
    would have to subscribe to a channel in every slot. A classic message reaches the master's
    own subscribers directly, and every other node over the cluster bus (so a worker receives
    each message from every master it listens to: forgetting twice does no harm). Listening to
    every master makes the lease rest on the connection to the node that published, as with
    one server, not on the cluster bus, whose links drop messages when they reconnect.
    """

    def __init__(self, settings: Settings, cluster: RedisCluster) -> None:
        self.settings = settings
        self.cluster = cluster
        self.subscribed: set[tuple[str, int]] = set()

    async def masters(self) -> set[tuple[str, int]]:
        # {(first slot, last slot): {"primary": (host, port), "replicas": [...]}}
        slots = cast("dict[Any, dict[str, Any]]", await self.cluster.cluster_slots())
        return {(shard["primary"][0], int(shard["primary"][1])) for shard in slots.values()}

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[list[PubSub]]:
        masters = await self.masters()
        async with contextlib.AsyncExitStack() as stack:
            pubsubs = []
            for host, port in sorted(masters):
                client = node_client(self.settings, host, port)
                stack.push_async_callback(client.aclose)
                pubsub = await stack.enter_async_context(client.pubsub())
                await pubsub.subscribe(channel)
                pubsubs.append(pubsub)
            self.subscribed = masters
            yield pubsubs

    async def still_current(self) -> bool:
        return await self.masters() == self.subscribed


async def listen(subscriptions: Subscriptions, channel: str, local: LocalTier) -> None:
    """Apply every invalidation message to `local` until cancelled, resubscribing after failures.

    A ping every third of a lease on each subscription renews the lease (local.py) once every
    one of them answered; a channel that stops answering is dropped and subscribed again. A
    message reaches a subscriber of the node that published it before that node answers a
    later ping, so a lease confirmed by every master covers every write acknowledged before it.
    """
    interval = local.lease_seconds / 3
    while True:
        try:
            async with subscriptions.subscribe(channel) as pubsubs:
                confirmed = [-float("inf")] * len(pubsubs)
                checked_at = time.monotonic()
                while True:
                    sent_at = time.monotonic()
                    for pubsub in pubsubs:
                        await pubsub.ping(repr(sent_at))
                    deadline = sent_at + interval
                    await asyncio.gather(
                        *(
                            receive(pubsub, deadline, local, confirmed, number)
                            for number, pubsub in enumerate(pubsubs)
                        )
                    )
                    if all(confirmed_at > -float("inf") for confirmed_at in confirmed):
                        local.confirm(min(confirmed))
                    if local.enabled and time.monotonic() - local.confirmed_at > SILENCE_SECONDS:
                        raise ConnectionError("the invalidation channel stopped answering")
                    if time.monotonic() - checked_at > TOPOLOGY_SECONDS:
                        checked_at = time.monotonic()
                        if not await subscriptions.still_current():
                            raise ConnectionError("the cluster's masters changed")
        except Exception as error:  # the channel is down: local copies go off until it is back
            if local.enabled:  # said once when it breaks, not at every attempt to resubscribe
                logger.warning(
                    "cache invalidation channel lost (%s); local copies off until it is back",
                    type(error).__name__,
                )
        finally:
            local.disconnected()
        await asyncio.sleep(RESUBSCRIBE_SECONDS)


async def receive(
    pubsub: PubSub, deadline: float, local: LocalTier, confirmed: list[float], number: int
) -> None:
    """Handle what `pubsub` brings until `deadline`, noting in `confirmed` the pings it answered."""
    while (remaining := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(timeout=remaining)
        if message is not None:
            handle(message, local, confirmed, number)


def handle(message: dict[str, Any], local: LocalTier, confirmed: list[float], number: int) -> None:
    if message["type"] == "subscribe":
        # Serving starts with the first confirmed lease, once every subscription answered.
        local.connected()
    elif message["type"] == "pong":
        # The send time of the ping it answers.
        confirmed[number] = max(confirmed[number], float(message["data"]))
    elif message["type"] == "message":
        local.forget(message["data"].decode())


def create_client(settings: Settings) -> Redis | RedisCluster:
    url = settings.redis_url.get_secret_value()
    if settings.redis_cluster:
        # Retried without waiting in between: a cache call has a deadline of tens of ms.
        retry = Retry(NoBackoff(), settings.redis_cluster_retries)
        return RedisCluster.from_url(url, retry=retry, **client_options(settings))
    # One immediate retry on a broken connection: after a restart or a failover the pooled
    # connections are dead, and the first call on one would fail: a read would open the breaker
    # (the worker's reads uncached for CACHE_BREAKER_SECONDS), a write would answer 503. A
    # refused connection fails again at once; a hung server is a timeout, never retried.
    reconnect = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return Redis.from_url(url, retry=reconnect, **client_options(settings))


def node_client(settings: Settings, host: str, port: int) -> Redis:
    """A subscriber's client of one cluster node, with REDIS_URL's credentials and scheme."""
    parts = urlsplit(settings.redis_url.get_secret_value())
    credentials, at, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = parts._replace(netloc=f"{credentials}{at}{address}", path="").geturl()
    return Redis.from_url(url, **client_options(settings, subscriber=True))


def client_options(settings: Settings, *, subscriber: bool = False) -> dict[str, Any]:
    return {
        # Values are bytes; with decoded responses every stored response would be mangled.
        "decode_responses": False,
        # A new connection may take longer than a command on a busy host; what a request waits
        # is bounded by CACHE_TIMEOUT_SECONDS anyway (cache/guard.py).
        "socket_connect_timeout": settings.health_check_timeout_seconds,
        # A subscription waits for messages indefinitely; its own pings find dead links.
        "socket_timeout": None if subscriber else settings.cache_timeout_seconds,
        # Named in CLIENT LIST, so the service's connections can be told apart.
        "client_name": f"{settings.cache_prefix}:invalidations"
        if subscriber
        else settings.cache_prefix,
    }


async def read_slot_map(cluster: RedisCluster, seconds: float) -> None:
    """Learn the cluster's nodes before requests share the client.

    Commands that find the slot map unread all at once break each other's new connections
    (seen with redis-py 8.1). A cluster that does not answer now is looked up by the first
    call instead: the service starts without its cache, as with one server.
    """
    with contextlib.suppress(RedisError, RedisClusterException, OSError, TimeoutError):
        async with asyncio.timeout(seconds):
            await cluster.initialize()


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[RedisStore, LocalTier | None]]:
    client = create_client(settings)
    if isinstance(client, RedisCluster):
        await read_slot_map(client, settings.health_check_timeout_seconds)
    if tracing_enabled():
        # Imported here: it loads the OpenTelemetry SDK, which a process without tracing skips.
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        # Each command becomes a span such as `MGET ? ?`: the instrumentation records no keys
        # (they hold token digests) and no values.
        RedisInstrumentor.instrument_client(client)
    channel = f"{settings.cache_prefix}:invalidations"
    local = None
    listener = None
    if settings.local_cache_max_bytes:
        local = LocalTier(settings.local_cache_max_bytes, settings.local_cache_lease_seconds)
        subscriptions: Subscriptions = (
            ClusterSubscriptions(settings, client)
            if isinstance(client, RedisCluster)
            else ServerSubscriptions(settings)
        )
        listener = asyncio.create_task(listen(subscriptions, channel, local))
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
        await client.aclose()
