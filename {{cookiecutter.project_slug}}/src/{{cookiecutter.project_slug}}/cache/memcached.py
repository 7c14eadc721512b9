"""Memcached through aiomcache: one client with a sized connection pool per process.

fastapi-cache2's MemcachedBackend is not used: it reports every entry's remaining lifetime as
3600 s and cannot add or compare-and-set. Memcached has no channel to tell other workers what
changed, so there is no local tier: every HIT is one multi-get.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

from aiomcache import Client
from aiomcache.exceptions import ClientException

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
    LocalCopies,
)
from {{ cookiecutter.project_slug }}.cache.batching import ReadBatcher
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.cache.guard import StoreRefusedError
from {{ cookiecutter.project_slug }}.settings import Settings

MEMCACHED_DEFAULT_PORT = 11211
# Compare-and-set retries before a version change gives up (and its write answers 503).
CAS_ATTEMPTS = 20


@contextmanager
def refusals_reported() -> Iterator[None]:
    """memcached's SERVER_ERROR on a store (an item over its size limit, or out of memory with
    eviction off, `-M`) as the refusal it is: the server still answers reads."""
    try:
        yield
    except ClientException as error:
        # aiomcache keeps the server's reply only in the message.
        if "SERVER_ERROR" in str(error):
            raise StoreRefusedError(f"memcached refused the item ({error})") from error
        raise


class MemcachedStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = self.connect()
        self.closing: set[asyncio.Task[None]] = set()
        self.reads = ReadBatcher(self.read_batch)

    def connect(self) -> Client:
        url = self.settings.memcached_url
        return Client(
            url.host or "127.0.0.1",
            url.port or MEMCACHED_DEFAULT_PORT,
            pool_size=self.settings.memcached_pool_size,
        )

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.reads.get_many(keys)

    async def read_batch(self, key_lists: list[Sequence[str]]) -> list[list[bytes | None]]:
        """Every list's values from one multi-get of all their keys (batching.py)."""
        wanted = list(dict.fromkeys(key for keys in key_lists for key in keys))
        try:
            # A batch is no request's call: it needs a deadline of its own.
            async with asyncio.timeout(self.settings.cache_timeout_seconds):
                values = await self.client.multi_get(*(key.encode() for key in wanted))
        except TimeoutError:
            self.after_timeout()
            raise
        found = dict(zip(wanted, values, strict=True))
        return [[found[key] for key in keys] for keys in key_lists]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        with refusals_reported():
            await self.client.set(key.encode(), value, exptime=ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        with refusals_reported():
            return await self.client.add(key.encode(), value, exptime=ttl)

    async def delete(self, key: str) -> None:
        await self.client.delete(key.encode())

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        key = state_key.encode()
        for _ in range(CAS_ATTEMPTS):
            stored, cas_token = await self.client.gets(key)
            current = State.parse(stored)
            before = current.pending if current else 0
            pending = max(before + pending_delta, 0)
            now = time.time()
            if not pending:
                state, ttl = State(version, 0), SETTLED_VERSION_SECONDS
            elif before and current and current.marked_until > now:
                # Overlapping writes keep the first one's expiry (see backend.CacheStore.bump).
                state = State(version, pending, current.marked_until)
                ttl = math.ceil(current.marked_until - now)
            else:
                state = State(version, pending, now + PENDING_WRITE_SECONDS)
                ttl = PENDING_WRITE_SECONDS
            value = state.encode()
            if stored is None or cas_token is None:
                if await self.client.add(key, value, exptime=ttl):
                    return
            elif await self.client.cas(key, value, cas_token, exptime=ttl):
                return
        raise RuntimeError(f"{state_key} kept changing; gave up after {CAS_ATTEMPTS} attempts")

    async def ping(self) -> None:
        await self.client.version()

    def after_timeout(self) -> None:
        """Start over with new connections: a call cut short leaves its answer unread.

        aiomcache returns a connection to its pool even when a call was cancelled, and the next
        call on it would read the previous call's answer.
        """
        old, self.client = self.client, self.connect()
        task = asyncio.get_running_loop().create_task(old.close())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def close(self) -> None:
        await self.client.close()


@asynccontextmanager
async def open_store(
    settings: Settings,
) -> AsyncIterator[tuple[MemcachedStore, LocalCopies | None]]:
    store = MemcachedStore(settings)
    try:
        yield store, None
    finally:
        await store.close()
