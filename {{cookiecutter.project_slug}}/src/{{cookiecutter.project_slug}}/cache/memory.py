"""In-process memory: no server, and each process has its own cache.

Fine for one process (development, a single worker); with several workers each keeps its own
copy, so choose Redis or memcached when the service scales out.

fastapi-cache2's InMemoryBackend is not used: it keeps one store in a class attribute (shared by
every app in the process), never evicts an entry that is not read again, and its lock is created
at import time, outside any event loop. Being in-process, this store is its own local tier.
"""

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cachetools import TLRUCache

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
)
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.cache.local import LocalTier
from {{ cookiecutter.project_slug }}.settings import Settings


@dataclass(frozen=True, slots=True)
class Stored:
    value: bytes
    expires_at: float  # on the store's clock


def stored_expiry(_key: str, stored: Stored, _now: float) -> float:
    return stored.expires_at


class MemoryStore:
    """A bounded, per-instance store: least recently used entries go first when it is full.

    No await between reading and writing: within one event loop every method is atomic.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.entries: TLRUCache[str, Stored] = TLRUCache(
            maxsize=max_entries, ttu=stored_expiry, timer=clock
        )
        self.clock = clock

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None if (stored := self.entries.get(key)) is None else stored.value for key in keys]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self.entries[key] = Stored(value, self.clock() + ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        if key in self.entries:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self.entries.pop(key, None)

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        stored = self.entries.get(state_key)
        current = State.parse(None if stored is None else stored.value)
        before = current.pending if current else 0
        pending = max(before + pending_delta, 0)
        value = State(version, pending).encode()
        if stored is not None and before and pending:
            self.entries[state_key] = Stored(value, stored.expires_at)  # overlapping writes
            return
        ttl = PENDING_WRITE_SECONDS if pending else SETTLED_VERSION_SECONDS
        await self.set(state_key, value, ttl)

    async def ping(self) -> None:
        """The cache lives in this process, so it is always reachable."""

    def after_timeout(self) -> None:
        """Nothing to reset: no connections."""


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[MemoryStore, LocalTier | None]]:
    yield MemoryStore(settings.memory_cache_max_entries), None
