"""Each worker's local tier: responses it read recently, answered with no round trip.

Only for a backend with an invalidation channel (Redis pub/sub). Every version change is
published by the cache server in the same atomic step that makes it (redis.py), and each worker
drops its copy of that version when the message arrives. A response is kept with the versions
it was read with (the caller's identity, its namespace), under its request key (keys.py), and
served from here only while every one of them matches the version held here, so dropping a
version is enough.

A link can die silently (a partition, a hung server), so copies are served only under a lease:
while the channel answered a ping sent less than LOCAL_CACHE_LEASE_SECONDS ago, every message
published before that ping has arrived. Writers wait one lease before their 2xx (backend.py),
so a worker that stopped hearing the channel has stopped serving before the write is
acknowledged. While the channel is down nothing is kept: messages may be missed.
"""

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from {{ cookiecutter.project_slug }}.cache.entries import Entry

# A response larger than this share of the budget is not kept: it would evict too many others.
LARGEST_ENTRY_SHARE = 16


@dataclass(frozen=True, slots=True)
class Copy:
    entry: Entry
    # (state key, version) pairs that must all still be current for the copy to be served.
    versions: tuple[tuple[str, int], ...]
    # The earliest expiry of the entries it was read with (the identity's included).
    expires_at: float


class LocalTier:
    def __init__(self, max_bytes: int, lease_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.lease_seconds = lease_seconds
        self.enabled = False
        # When the newest ping that the channel answered was sent (time.monotonic()).
        self.confirmed_at = -float("inf")
        # Moves on with every message and reconnection: a read that began before one of them
        # may carry what it invalidated, so it is not kept.
        self.generation = 0
        self.versions: dict[str, int] = {}
        self.copies: OrderedDict[str, Copy] = OrderedDict()
        self.size = 0

    def usable(self) -> bool:
        return self.enabled and time.monotonic() - self.confirmed_at < self.lease_seconds

    def confirm(self, ping_sent_at: float) -> None:
        self.confirmed_at = max(self.confirmed_at, ping_sent_at)

    def get(self, request_key: str, now: float) -> Entry | None:
        if (copy := self.copies.get(request_key)) is None or not self.usable():
            return None
        current = self.versions.get
        if copy.expires_at <= now or any(current(key) != version for key, version in copy.versions):
            self.drop(request_key)
            return None
        self.copies.move_to_end(request_key)
        return copy.entry

    def keep(self, generation: int, request_key: str, read: Sequence[tuple[str, Entry]]) -> None:
        """Keep what a read that began at `generation` found valid, unless it is outdated.

        `read` pairs each entry read with its state key; the last entry is the response.
        """
        entry = read[-1][1]
        size = len(entry.body)
        if not self.usable() or generation != self.generation:
            return
        if size * LARGEST_ENTRY_SHARE > self.max_bytes:
            return
        for state_key, found in read:
            self.versions[state_key] = found.version
        self.drop(request_key)
        versions = tuple((state_key, found.version) for state_key, found in read)
        expires_at = min(found.expires_at for _, found in read)
        self.copies[request_key] = Copy(entry, versions, expires_at)
        self.size += size
        while self.size > self.max_bytes:
            self.drop(next(iter(self.copies)))

    def drop(self, request_key: str) -> None:
        copy = self.copies.pop(request_key, None)
        if copy is not None:
            self.size -= len(copy.entry.body)

    def forget(self, state_key: str) -> None:
        """A version changed (announced by any worker): stop serving what was read with it."""
        self.generation += 1
        self.versions.pop(state_key, None)

    def connected(self) -> None:
        self.generation += 1
        self.enabled = True

    def disconnected(self) -> None:
        """Messages may be missed from now on: forget everything and stop serving."""
        self.generation += 1
        self.enabled = False
        self.confirmed_at = -float("inf")
        self.versions.clear()
        self.copies.clear()
        self.size = 0
