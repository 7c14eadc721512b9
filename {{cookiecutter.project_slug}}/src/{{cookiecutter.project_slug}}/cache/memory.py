"""In-process memory: no server, and each process has its own cache.

Fine for one process (development, a single worker); with several workers each keeps its own copy,
so choose Redis or memcached when the service scales out.

fastapi-cache2's InMemoryBackend is not used: it keeps one store in a class attribute (shared by
every app in the process, so separate apps and tests see each other's entries), never evicts an
entry that is not read again, and rounds expiry to whole seconds.
"""

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cachetools import TLRUCache
from fastapi_cache.types import Backend

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.settings import Settings


@dataclass(frozen=True)
class Entry:
    value: bytes
    expires_at: float  # on the backend's clock


def entry_expiry(_key: str, entry: Entry, _now: float) -> float:
    return entry.expires_at


class MemoryBackend(Backend):
    """A bounded, per-instance store: least recently used entries go first when it is full."""

    def __init__(
        self,
        max_entries: int,
        default_ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: TLRUCache[str, Entry] = TLRUCache(
            maxsize=max_entries, ttu=entry_expiry, timer=clock
        )
        self._default_ttl_seconds = default_ttl_seconds
        self._clock = clock

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        entry = self._entries.get(key)
        if entry is None:
            return 0, None
        return math.ceil(entry.expires_at - self._clock()), entry.value

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        ttl = expire or self._default_ttl_seconds
        self._entries[key] = Entry(value, self._clock() + ttl)

    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        """Remove `key`, or every key in `namespace` (never a sibling such as `items2`)."""
        if key is not None:
            return 1 if self._entries.pop(key, None) is not None else 0
        if namespace is None:
            return 0
        stale = [cached for cached in self._entries if cached.startswith(f"{namespace}:")]
        for cached in stale:
            del self._entries[cached]
        return len(stale)


async def ping() -> None:
    """The cache lives in this process, so it is always reachable."""


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[CacheConnection]:
    backend = MemoryBackend(settings.memory_cache_max_entries, settings.cache_ttl_seconds)
    yield CacheConnection(backend=backend, ping=ping)
