"""In-process memory: no server, and one process per database.

A write can invalidate only the cache of the process that made it, so a second process serving
the same database (another worker, another instance) would leave the first one's copies stale.
A lock tied to the database (db/{{ cookiecutter.database }}_lock.py) therefore admits one process:
any other refuses to start and says what to do instead. A process that loses the lock while
running (its database session ended) drops everything it cached and treats the cache as an
unreachable server, so reads are computed and writes answer 503, until it holds the lock again.

fastapi-cache2's InMemoryBackend is not used: it keeps one store in a class attribute (shared by
every app in the process), never evicts an entry that is not read again, and its lock is created
at import time, outside any event loop. Being in-process, this store is its own local tier.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cachetools import TLRUCache

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
    LocalCopies,
)
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.db.{{ cookiecutter.database }}_lock import DatabaseLock
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)

# How often the lock is checked while held, and taken again after it was lost.
LOCK_CHECK_SECONDS = 1.0


class CacheInUseError(RuntimeError):
    """Another process serves this database with its own in-process cache."""


class LockLostError(ConnectionError):
    """This process no longer holds the database lock, so its cache may not be used."""


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
        self.usable = True

    def disable(self) -> None:
        """Forget everything and fail every call: another process may be writing meanwhile."""
        self.usable = False
        self.entries.clear()

    def enable(self) -> None:
        self.entries.clear()  # nothing cached before this moment is known to be current
        self.usable = True

    def require_lock(self) -> None:
        if not self.usable:
            raise LockLostError("this process does not hold the database lock")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.require_lock()
        return [None if (stored := self.entries.get(key)) is None else stored.value for key in keys]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self.require_lock()
        self.entries[key] = Stored(value, self.clock() + ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        self.require_lock()
        if key in self.entries:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self.require_lock()
        self.entries.pop(key, None)

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        self.require_lock()
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
        """The cache lives in this process: it answers while this process holds the lock."""
        self.require_lock()

    def after_timeout(self) -> None:
        """Nothing to reset: no connections."""


def refusal(holder: str, lock: DatabaseLock) -> str:
    return (
        f"cache_backend=memory serves one process per database, and {holder} already holds "
        f"{lock.name}: a second process would serve stale reads after the other one's writes. "
        "Run a single process (no --workers, WEB_CONCURRENCY unset, one instance), or "
        "generate the project with cache_backend=redis or memcached to run several."
    )


async def keep_lock(store: MemoryStore, lock: DatabaseLock, settings: Settings) -> None:
    """Check the lock while it is held; after it is lost, take it again, until cancelled."""
    deadline = settings.database_statement_timeout_seconds
    held = store.usable
    last_refusal = -float("inf")
    while True:
        await asyncio.sleep(LOCK_CHECK_SECONDS)
        if held:
            try:
                if not store.usable:  # the driver said the session ended
                    raise LockLostError("the lock's session ended")
                async with asyncio.timeout(deadline):
                    await lock.check()
                continue
            except Exception as error:  # the session ended or stopped answering: let it go
                store.disable()
                held = False
                logger.warning(
                    "the in-process cache lost %s (%s); serving without it until it is back",
                    lock.name,
                    type(error).__name__,
                )
                with contextlib.suppress(Exception):
                    await lock.release()
        try:
            async with asyncio.timeout(deadline):
                holder = await lock.take()
        except Exception as error:  # the database is down: its own errors say so
            logger.debug("cannot take %s yet (%s)", lock.name, type(error).__name__)
            continue
        if holder is None:
            store.enable()
            held = True
            logger.warning("the in-process cache holds %s again and is back in use", lock.name)
        elif time.monotonic() - last_refusal >= settings.cache_warning_interval_seconds:
            logger.error("%s Meanwhile this process serves without it.", refusal(holder, lock))
            last_refusal = time.monotonic()


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[MemoryStore, LocalCopies | None]]:
    """The store, once this process holds the database lock; CacheInUseError if another does.

    A database that does not answer yet does not stop the start: the cache stays off (as an
    unreachable cache server would) until the lock is taken.
    """
    store = MemoryStore(settings.memory_cache_max_entries)
    lock = DatabaseLock(settings, on_lost=store.disable)
    try:
        async with asyncio.timeout(settings.database_statement_timeout_seconds):
            holder = await lock.take()
    except Exception as error:  # unreachable: keep_lock takes it once the database answers
        store.disable()
        logger.warning(
            "the in-process cache is off until %s can be taken (%s)",
            lock.name,
            type(error).__name__,
        )
    else:
        if holder is not None:
            await lock.close()
            message = refusal(holder, lock)
            logger.error("%s", message)
            raise CacheInUseError(message)
    keeper = asyncio.create_task(keep_lock(store, lock, settings))
    try:
        yield store, None
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        store.disable()
        await lock.close()
