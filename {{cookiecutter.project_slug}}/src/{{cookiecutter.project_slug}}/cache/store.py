"""The operations a cache backend module provides; `GuardedBackend` builds on them."""

from typing import Protocol

from {{ cookiecutter.project_slug }}.cache.local import LocalResponseCache


class CacheStore(Protocol):
    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        """The value and its remaining lifetime in whole seconds; (0, None) when absent."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    # Counters (namespace versions) and locks: plain integers, never read through `get`.

    async def add(self, key: str, value: int, expire: int | None = None) -> bool:
        """Store `value` only if `key` is absent (atomic across processes); True if stored."""
        ...

    async def incr(self, key: str) -> int:
        """Atomically add 1 to the counter at `key`, which must exist; the new value."""
        ...

    async def get_int(self, key: str) -> int | None: ...


class Invalidations(Protocol):
    """How workers tell each other what to drop from their local response caches."""

    async def publish(self, message: str) -> None: ...

    async def listen(self, local: LocalResponseCache) -> None:
        """Apply every message to `local` until cancelled, reconnecting after failures.

        Calls `local.connected()` once subscribed and `local.disconnected()` whenever messages
        may be missed.
        """
        ...
