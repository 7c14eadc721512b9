"""The backend fastapi-cache2 talks to: fail-open, one computation per key, versioned namespaces.

- Fail-open: when the cache server errs, reads are misses and writes are skipped, so endpoints
  compute and answer 200. One warning per interval says so, without a traceback per request.
- One computation per key: concurrent misses for a key wait for the first one's result instead of
  all running the endpoint (a stampede). Within a process an asyncio.Event coordinates them;
  across processes a short lock in the cache server does (SET NX / memcached add). A waiter gives
  up after `lock_seconds` and computes itself, so a slow or failed leader never blocks anyone.
- Versioned namespaces: a key embeds its namespace's version; invalidating a namespace increments
  the version, one atomic command, so no KEYS/SCAN and no sibling namespace (`items2` beside
  `items`) is touched. Entries of old versions are never read again and expire by their TTL.
- Every invalidation is also applied to this worker's local response cache at once and
  announced to the other workers (see local.py).
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi_cache import FastAPICache
from fastapi_cache.types import Backend

from {{ cookiecutter.project_slug }}.cache.local import LocalResponseCache
from {{ cookiecutter.project_slug }}.cache.store import CacheStore, Invalidations

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A key containing this is never read or written: used when the namespace version is unknown.
UNCACHEABLE = ":uncacheable:"
# How often a waiter looks for another process's result while that process holds the lock.
POLL_SECONDS = 0.02
# After a cache error, requests stop coordinating for this long: with the server down nobody's
# result can be shared, and waiting in line would only serialize the computations.
DEGRADED_SECONDS = 1.0

# The keys whose computation the current request leads; released when its endpoint finishes.
led_keys: ContextVar[set[str] | None] = ContextVar("led_keys", default=None)


@dataclass
class Flight:
    """One in-process computation of a key, which other requests for the key wait on."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    holds_server_lock: bool = False


class GuardedBackend(Backend):
    def __init__(
        self,
        store: CacheStore,
        *,
        lock_seconds: float,
        warning_interval_seconds: float,
        local: LocalResponseCache | None = None,
        invalidations: Invalidations | None = None,
    ) -> None:
        self.store = store
        self.local = local
        self._invalidations = invalidations
        self._lock_seconds = lock_seconds
        self._warning_interval = warning_interval_seconds
        self._last_warning = -math.inf
        self._suppressed_errors = 0
        self._last_error = -math.inf
        self._flights: dict[str, Flight] = {}

    # fastapi-cache2's Backend interface

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        """A hit, or a miss that the caller must compute (and then `set`)."""
        if UNCACHEABLE in key:
            return 0, None
        ttl, value = await self._guard("read", self.store.get_with_ttl(key), (0, None))
        if value is not None:
            return ttl, value
        return await self._wait_or_lead(key)

    async def get(self, key: str) -> bytes | None:
        if UNCACHEABLE in key:
            return None
        return await self._guard("read", self.store.get(key), None)

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        try:
            if UNCACHEABLE not in key:
                await self._guard("write", self.store.set(key, value, expire), None)
        finally:
            await self.release(key)

    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        if key is not None:
            await self._guard("delete", self.store.delete(key), None)
        if namespace is not None:
            await self.invalidate(namespace)
        return 0

    # Versioned namespaces

    async def namespace_version(self, namespace: str) -> str:
        """The namespace's current version, for cache keys; UNCACHEABLE if the cache is down."""
        version_key = f"{namespace}:version"
        version = await self._guard("read", self.store.get_int(version_key), None)
        if version is None:
            # Start from the clock, not 0: if the counter is ever evicted, the new one cannot
            # repeat an old version whose entries may still be cached.
            await self._guard("write", self.store.add(version_key, time.time_ns()), False)
            version = await self._guard("read", self.store.get_int(version_key), None)
        return UNCACHEABLE if version is None else f"v{version}"

    async def invalidate(self, namespace: str) -> None:
        """Make every entry of `namespace` unreachable, for every process at once."""
        version_key = f"{namespace}:version"
        if not await self._guard("write", self.store.add(version_key, time.time_ns()), True):
            await self._guard("write", self.store.incr(version_key), 0)
        await self._announce(f"scope:{namespace}")

    async def revoke(self, identity_key: str, token_hash: str) -> None:
        """Forget a revoked token's cached identity, and every response cached for it."""
        await self._guard("delete", self.store.delete(identity_key), None)
        await self._announce(f"token:{token_hash}")

    async def _announce(self, message: str) -> None:
        if self.local is not None:
            self.local.apply(message)
        if self._invalidations is not None:
            await self._guard("publish", self._invalidations.publish(message), None)

    # One computation per key

    async def _wait_or_lead(self, key: str) -> tuple[int, bytes | None]:
        deadline = time.monotonic() + self._lock_seconds
        while (flight := self._flights.get(key)) is not None:
            if self._degraded():
                return 0, None
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    await flight.done.wait()
            except TimeoutError:
                return 0, None  # the leader is too slow: compute without waiting longer
            ttl, value = await self._guard("read", self.store.get_with_ttl(key), (0, None))
            if value is not None:
                return ttl, value
            # The leader produced nothing (it failed): try to lead.
        if self._degraded():
            return 0, None
        flight = Flight()
        self._flights[key] = flight
        led = led_keys.get()
        if led is not None:
            led.add(key)
        lock_key = f"{key}:lock"
        lock_expiry = math.ceil(self._lock_seconds)
        while True:
            # If the cache server is down, lead: every read is a miss anyway.
            flight.holds_server_lock = await self._guard(
                "write", self.store.add(lock_key, 1, lock_expiry), True
            )
            # Read again whether or not the lock was ours: another process may have stored the
            # value and released its lock since our first read.
            ttl, value = await self._guard("read", self.store.get_with_ttl(key), (0, None))
            if value is not None:
                await self.release(key)
                return ttl, value
            if flight.holds_server_lock or time.monotonic() >= deadline:
                return 0, None
            # Another process computes this key: wait for its result or for its lock to lapse.
            await asyncio.sleep(POLL_SECONDS)

    async def release(self, key: str) -> None:
        """End this process's computation of `key` and wake its waiters."""
        flight = self._flights.pop(key, None)
        led = led_keys.get()
        if led is not None:
            led.discard(key)
        if flight is None:
            return
        flight.done.set()
        if flight.holds_server_lock:
            await self._guard("delete", self.store.delete(f"{key}:lock"), None)

    async def release_led_keys(self) -> None:
        for key in list(led_keys.get() or ()):
            await self.release(key)

    # Fail-open

    async def _guard(self, operation: str, call: Awaitable[T], fallback: T) -> T:
        try:
            return await call
        except Exception as error:  # any cache failure degrades to "no cache", never to a 500
            self._warn(operation, error)
            return fallback

    def _degraded(self) -> bool:
        return time.monotonic() - self._last_error < DEGRADED_SECONDS

    def _warn(self, operation: str, error: Exception) -> None:
        now = time.monotonic()
        self._last_error = now
        if now - self._last_warning < self._warning_interval:
            self._suppressed_errors += 1
            return
        logger.warning(
            "cache %s failed (%s: %s); serving without the cache. %d similar errors in the last "
            "%.0f s were not logged.",
            operation,
            type(error).__name__,
            error,
            self._suppressed_errors,
            self._warning_interval,
        )
        self._last_warning = now
        self._suppressed_errors = 0


def guarded_backend() -> GuardedBackend:
    """The backend the lifespan gave FastAPICache.init."""
    backend = FastAPICache.get_backend()
    if not isinstance(backend, GuardedBackend):
        raise TypeError("FastAPICache was initialised with a backend other than GuardedBackend")
    return backend
