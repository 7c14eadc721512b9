"""Single flight: concurrent misses for one key compute it once, in a process and across them.

Within a process the first miss leads and the others wait on its Event. Across processes the
leader also takes a short lock in the cache server (`<key>:lock`, stored only if absent); a
process that finds the lock taken polls for the leader's result instead of computing. A waiter
gives up after CACHE_LOCK_SECONDS and computes itself, so a slow or failed leader blocks nobody
for long. A leader whose computation raised releases its key when `leading()` ends.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from {{ cookiecutter.project_slug }}.cache.entries import Entry

# How often a process waiting on another process's leader reads the key again.
POLL_SECONDS = 0.02

# The keys the current call leads, so that `leading()` can release them whatever happens.
led_keys: ContextVar[set[str] | None] = ContextVar("led_keys", default=None)


@dataclass
class Flight:
    # The namespace version read before computing: the result is stored under it.
    version: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    holds_server_lock: bool = False


@contextmanager
def leading() -> Iterator[set[str]]:
    """Scope one cached call; yields the keys it leads, which the caller must release."""
    keys: set[str] = set()
    token = led_keys.set(keys)
    try:
        yield keys
    finally:
        led_keys.reset(token)


class Flights:
    def __init__(self, lock_seconds: float) -> None:
        self.lock_seconds = lock_seconds
        self.flights: dict[str, Flight] = {}

    async def wait_or_lead(
        self,
        key: str,
        version: int | None,
        read: Callable[[], Awaitable[Entry | None]],
        take_lock: Callable[[], Awaitable[bool]],
        release_lock: Callable[[], Awaitable[None]],
    ) -> Entry | None:
        """Another leader's result, or None: then this call leads and must `finish(key)`."""
        deadline = time.monotonic() + self.lock_seconds
        while (flight := self.flights.get(key)) is not None:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                    await flight.done.wait()
            except TimeoutError:
                return None  # the leader is too slow: compute, but do not lead
            if (value := await read()) is not None:
                return value
        if version is None:
            return None  # nothing will be stored (a write is in flight): nobody waits for it
        flight = self.flights[key] = Flight(version)
        if (led := led_keys.get()) is not None:
            led.add(key)
        while True:
            flight.holds_server_lock = await take_lock()
            # Read again whether or not the lock was ours: another process may have stored the
            # value and released its lock since the first read.
            if (value := await read()) is not None:
                if flight.holds_server_lock:
                    await release_lock()
                self.finish(key)
                return value
            if flight.holds_server_lock or time.monotonic() >= deadline:
                return None
            # Another process computes this key: wait for its result or for its lock to lapse.
            await asyncio.sleep(POLL_SECONDS)

    def finish(self, key: str) -> Flight | None:
        """End this process's computation of `key`; its waiters read the result (or lead)."""
        flight = self.flights.pop(key, None)
        if (led := led_keys.get()) is not None:
            led.discard(key)
        if flight is not None:
            flight.done.set()
        return flight
