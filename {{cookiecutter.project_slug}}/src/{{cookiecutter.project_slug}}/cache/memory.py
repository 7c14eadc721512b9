"""In-process memory: no server, and each process has its own cache.

Fine for one process (development, a single worker); with several workers each keeps its own copy,
so choose Redis or memcached when the service scales out.

fastapi-cache2's InMemoryBackend is not used: it keeps one store in a class attribute (shared by
every app in the process, so separate apps and tests see each other's entries), never evicts an
entry that is not read again, rounds expiry to whole seconds, and its lock is created at import
time, outside any event loop.
"""

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cachetools import TLRUCache

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection, local_response_cache
from {{ cookiecutter.project_slug }}.settings import Settings


@dataclass(frozen=True)
class Entry:
    value: bytes
    expires_at: float  # on the backend's clock


def entry_expiry(_key: str, entry: Entry, _now: float) -> float:
    return entry.expires_at


class MemoryStore:
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

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    # No await between reading and writing: within one event loop these are atomic.

    async def add(self, key: str, value: int, expire: int | None = None) -> bool:
        if key in self._entries:
            return False
        self._entries[key] = Entry(str(value).encode(), self._clock() + (expire or math.inf))
        return True

    async def incr(self, key: str) -> int:
        entry = self._entries[key]
        value = int(entry.value) + 1
        self._entries[key] = Entry(str(value).encode(), entry.expires_at)
        return value

    async def get_int(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else int(entry.value)


async def ping() -> None:
    """The cache lives in this process, so it is always reachable."""


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[CacheConnection]:
    store = MemoryStore(settings.memory_cache_max_entries, settings.cache_ttl_seconds)
    local = local_response_cache(settings.local_cache_max_bytes, settings)
    if local is not None:
        # One process, one cache: the backend applies every invalidation here directly, so
        # there is no channel that could miss a message.
        local.connected()
    yield CacheConnection(store=store, ping=ping, local=local)
