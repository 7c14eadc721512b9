"""Each worker's local tier: versions and entries it read recently, answered with no round trip.

Only for a backend with an invalidation channel (Redis pub/sub). Every version change is
published by the cache server in the same atomic step that makes it (redis.py), and each worker
drops its copy of that version when the message arrives. An entry is served from here only when
its version matches the version held here, so dropping a version is enough.

A link can die silently (a partition, a hung server), so copies are served only under a lease:
while the channel answered a ping sent less than LOCAL_CACHE_LEASE_SECONDS ago, every message
published before that ping has arrived. Writers wait one lease before their 2xx (backend.py),
so a worker that stopped hearing the channel has stopped serving before the write is
acknowledged. While the channel is down nothing is kept: messages may be missed.
"""

import time
from collections import OrderedDict

from {{ cookiecutter.project_slug }}.cache.entries import Entry

# An entry larger than this share of the budget is not kept: it would evict too many others.
LARGEST_ENTRY_SHARE = 16


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
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0

    def usable(self) -> bool:
        return self.enabled and time.monotonic() - self.confirmed_at < self.lease_seconds

    def confirm(self, ping_sent_at: float) -> None:
        self.confirmed_at = max(self.confirmed_at, ping_sent_at)

    def get(self, state_key: str, entry_key: str, now: float) -> Entry | None:
        if not self.usable():
            return None
        version = self.versions.get(state_key)
        entry = self.entries.get(entry_key)
        if version is None or entry is None or entry.version != version:
            return None
        if entry.expires_at <= now:
            self.drop(entry_key)
            return None
        self.entries.move_to_end(entry_key)
        return entry

    def keep(self, generation: int, state_key: str, entry_key: str, entry: Entry) -> None:
        """Keep what a read that began at `generation` found valid, unless it is outdated."""
        size = len(entry.body)
        if not self.usable() or generation != self.generation:
            return
        if size * LARGEST_ENTRY_SHARE > self.max_bytes:
            return
        self.versions[state_key] = entry.version
        self.drop(entry_key)
        self.entries[entry_key] = entry
        self.size += size
        while self.size > self.max_bytes:
            self.drop(next(iter(self.entries)))

    def drop(self, entry_key: str) -> None:
        entry = self.entries.pop(entry_key, None)
        if entry is not None:
            self.size -= len(entry.body)

    def forget(self, state_key: str) -> None:
        """A version changed (announced by any worker): stop serving its entries."""
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
        self.entries.clear()
        self.size = 0
