"""The cache the lifespan opens: fastapi-cache2's backend, and what the edge and writes use.

The lifespan keeps one `ResponseCache` on `app.state.cache` and hands the same object to
`FastAPICache.init`, whose `@cache` decorator calls the Backend methods below. Every call to the
server goes through the guard (deadline, circuit breaker, fail-open) and reads check versions:
an entry is served only while its namespace has no write in flight and its version is current.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi_cache.types import Backend

from {{ cookiecutter.project_slug }} import tracing
from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.cache.entries import Entry, State, fresh_version, valid_entry
from {{ cookiecutter.project_slug }}.cache.flight import Flights
from {{ cookiecutter.project_slug }}.cache.guard import Guard

# A write in flight keeps its namespace uncached at most this long if it never reports its end
# (its process died, or the cache failed after the commit); far above any database deadline.
PENDING_WRITE_SECONDS = 30
# A settled version outlives every entry made under it; losing it only costs misses.
SETTLED_VERSION_SECONDS = 24 * 3600


class CacheStore(Protocol):
    """What a backend module provides: one round trip per call."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if `key` is absent, atomically across processes; True if stored."""
        ...

    async def delete(self, key: str) -> None: ...

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        """Atomically give the state `version` and add `pending_delta` to its writes in flight.

        Expires PENDING_WRITE_SECONDS after the first of overlapping writes marked it (later
        ones do not extend it: a mark left by a write that never ended must lapse), else after
        SETTLED_VERSION_SECONDS. Where workers keep local copies, also tells them to drop it.
        """
        ...

    async def ping(self) -> None: ...

    def after_timeout(self) -> None:
        """Called when a call was cut short by its deadline (memcached.py must reconnect)."""
        ...


class LocalCopies(Protocol):
    """A worker's copies of what it read recently, answered with no round trip.

    Only a backend that can tell every worker what changed keeps them: Redis, by pub/sub
    (cache/local.py in a Redis project). Elsewhere the cache has none.
    """

    # How long a worker that stopped hearing of changes may still serve its copies.
    lease_seconds: float
    # Moves on whenever a copy may have become outdated (see keep).
    generation: int

    def get(self, request_key: str, now: float) -> Entry | None: ...

    def keep(self, generation: int, request_key: str, read: Sequence[tuple[str, Entry]]) -> None:
        """Keep what a read that began at `generation` found valid, unless it is outdated."""
        ...

    def forget(self, state_key: str) -> None: ...


class ResponseCache(Backend):
    def __init__(
        self,
        store: CacheStore,
        guard: Guard,
        *,
        prefix: str,
        lock_seconds: float,
        local: LocalCopies | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self.prefix = prefix
        self.flights = Flights(lock_seconds)
        self.local = local

    async def ping(self) -> None:
        """Raise unless the cache server answers; BreakerOpenError at once while it is skipped."""
        await self.guard.run("ping", self.store.ping)

    # Reading

    async def read(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, in one round trip; all None while the cache is unavailable."""
        return await self.guard.attempt(
            "read", lambda: self.store.get_many(keys), [None] * len(keys)
        )

    async def lookup(self, entry_key: str) -> tuple[Entry | None, int | None]:
        """The valid entry at `entry_key`, else the version a new one must be stored under."""
        stored_state, stored_entry = await self.read([keys.state_key(entry_key), entry_key])
        if (entry := valid_entry(stored_state, stored_entry, time.time())) is not None:
            return entry, entry.version
        state = State.parse(stored_state)
        if state is None and not self.guard.is_open:
            # No version yet (or it was evicted): start a fresh one, unless another process
            # just did; then read theirs.
            created = State(fresh_version(), 0)
            settled = self.settled(keys.state_key(entry_key), created)
            if await self.guard.attempt("write", settled, False):
                return None, created.version
            state = State.parse((await self.read([keys.state_key(entry_key)]))[0])
        return None, None if state is None else state.current()

    async def valid_entry(self, entry_key: str) -> Entry | None:
        entry, _ = await self.lookup(entry_key)
        return entry

    def settled(self, state_key: str, state: State) -> Callable[[], Awaitable[bool]]:
        return lambda: self.store.add(state_key, state.encode(), SETTLED_VERSION_SECONDS)

    async def store_entry(self, entry_key: str, version: int, body: bytes, ttl: int) -> None:
        entry = Entry.new(version, ttl, body)
        await self.guard.attempt(
            "write", lambda: self.store.set(entry_key, entry.encode(), ttl), None
        )

    # Writes (see invalidation.py)

    async def begin_write(self, state_key: str) -> None:
        """Mark a write in flight; raises CacheUnavailableError if that cannot be confirmed."""
        self.forget_locally(state_key)
        bump = self.store.bump
        await self.guard.run(
            "invalidate", lambda: bump(state_key, fresh_version(), 1), even_if_open=True
        )

    async def end_write(self, state_key: str) -> None:
        """Settle a new version; if this fails, the in-flight mark expires on its own."""
        self.forget_locally(state_key)
        bump = self.store.bump
        await self.guard.attempt("invalidate", lambda: bump(state_key, fresh_version(), -1), None)
        if self.local is not None:
            # Any worker that did not hear of this write has stopped serving local copies by
            # the end of its lease (local.py).
            await asyncio.sleep(self.local.lease_seconds)

    def forget_locally(self, state_key: str) -> None:
        if self.local is not None:
            self.local.forget(state_key)

    # fastapi-cache2's Backend, for `@cache`

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        """A HIT, or None: then the caller computes (once per key, see flight.py) and `set`s."""
        entry, version = await self.lookup(key)
        if entry is None:
            lock_ttl = math.ceil(self.flights.lock_seconds)
            # A span of its own: the time spent waiting for another request's computation.
            with tracing.tracer().start_as_current_span("cache single-flight") as span:
                entry = await self.flights.wait_or_lead(
                    key,
                    version,
                    read=lambda: self.valid_entry(key),
                    take_lock=lambda: self.guard.attempt(
                        "lock", lambda: self.store.add(f"{key}:lock", b"1", lock_ttl), True
                    ),
                    release_lock=lambda: self.unlock(key),
                )
                span.set_attribute("cache.computed_elsewhere", entry is not None)
        return (0, None) if entry is None else (entry.ttl(time.time()), entry.body)

    async def get(self, key: str) -> bytes | None:
        entry = await self.valid_entry(key)
        return None if entry is None else entry.body

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        flight = self.flights.finish(key)
        if flight is None:
            return  # not led: a write was in flight, or the cache failed, while it was computed
        try:
            await self.store_entry(key, flight.version, value, expire or 1)
        finally:
            if flight.holds_server_lock:
                await self.unlock(key)

    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        """Invalidate a shared namespace (a new version), or delete one key."""
        if namespace is not None:
            shared = keys.namespace_key(self.prefix, keys.shared_partition(namespace), namespace)
            state_key = keys.namespace_state_key(shared)
            bump = self.store.bump
            await self.guard.run(
                "invalidate", lambda: bump(state_key, fresh_version(), 0), even_if_open=True
            )
        if key is not None:
            await self.guard.run("delete", lambda: self.store.delete(key), even_if_open=True)
        return 0

    async def release(self, key: str) -> None:
        """End a computation of `key` that stored nothing (its function raised)."""
        flight = self.flights.finish(key)
        if flight is not None and flight.holds_server_lock:
            await self.unlock(key)

    async def unlock(self, key: str) -> None:
        await self.guard.attempt("unlock", lambda: self.store.delete(f"{key}:lock"), None)


async def get_cache(request: Request) -> ResponseCache:
    """The cache the lifespan opened (dependency)."""
    cache: ResponseCache = request.app.state.cache
    return cache


CacheDep = Annotated[ResponseCache, Depends(get_cache)]
