"""Each worker's local tier: versions and entries it read recently, answered with no round trip.

Only for a backend with an invalidation channel (Redis pub/sub). Every version change is
published by the cache server in the same atomic step that makes it (redis.py), and each worker
drops its copy of that version when the message arrives, before the writer gets its reply. An
entry is served from here only when its version matches the version held here, so dropping a
version is enough. While the channel is down nothing is served or kept: messages may be missed.
"""

from collections import OrderedDict

from {{ cookiecutter.project_slug }}.cache.entries import Entry

# An entry larger than this share of the budget is not kept: it would evict too many others.
LARGEST_ENTRY_SHARE = 16


class LocalTier:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.enabled = False
        # Moves on with every message and reconnection: a read that began before one of them
        # may carry what it invalidated, so it is not kept.
        self.generation = 0
        self.versions: dict[str, int] = {}
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0

    def get(self, state_key: str, entry_key: str, now: float) -> Entry | None:
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
        if not self.enabled or generation != self.generation:
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
        self.versions.clear()
        self.entries.clear()
        self.size = 0
