"""The two kinds of value the cache holds: a namespace's version state, and entries.

A state is `b"<version> <pending>"`: the version current entries carry, and how many writes are
between their "about to commit" and "committed" steps. An entry is served only while its
namespace has no write in flight and its version is the current one (see invalidation.py).
Versions are random, so one never comes back after a state was lost (evicted or expired).
"""

import hashlib
import secrets
import struct
import time
from dataclasses import dataclass
from typing import NamedTuple

# version, expiry time (Unix seconds), ETag digest; the body follows.
HEADER = struct.Struct(">qd16s")


def etag_for(body: bytes) -> str:
    """A strong ETag: equal for equal bytes, in every process."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def fresh_version() -> int:
    return secrets.randbits(62) + 1


@dataclass(frozen=True, slots=True)
class State:
    version: int
    pending: int
    # When the mark of writes in flight lapses (Unix time), for a store that cannot keep a
    # key's expiry while changing its value (memcached); 0 elsewhere.
    marked_until: float = 0.0

    @classmethod
    def parse(cls, stored: bytes | None) -> "State | None":
        try:
            version, pending, *until = stored.split() if stored else (b"", b"")
            return cls(int(version), int(pending), float(until[0]) if until else 0.0)
        except (ValueError, IndexError):
            return None  # absent, or not written by this code: unusable

    def encode(self) -> bytes:
        until = f" {self.marked_until!r}" if self.marked_until else ""
        return f"{self.version} {self.pending}{until}".encode()

    def current(self) -> int | None:
        """The version entries must carry to be served; None while a write is in flight."""
        return self.version if self.pending == 0 else None


class Entry(NamedTuple):
    """A cached response. A tuple, not a dataclass: every HIT read from the cache server makes
    one or two, and a frozen dataclass takes several times longer to build."""

    version: int
    expires_at: float
    etag: str
    body: bytes

    @classmethod
    def new(cls, version: int, ttl_seconds: int, body: bytes) -> "Entry":
        return cls(version, time.time() + ttl_seconds, etag_for(body), body)

    def encode(self) -> bytes:
        etag = bytes.fromhex(self.etag.strip('"'))
        return HEADER.pack(self.version, self.expires_at, etag) + self.body

    def ttl(self, now: float) -> int:
        return max(int(self.expires_at - now), 0)


def valid_entry(state: bytes | None, entry: bytes | None, now: float) -> Entry | None:
    """The entry, if it may be served: its namespace is settled, same version, not expired."""
    if state is None or entry is None or len(entry) < HEADER.size:
        return None
    version, expires_at, etag = HEADER.unpack_from(entry)
    # Read as bytes, not through State.parse (a HIT checks one or two entries): the state
    # must be `<the entry's version> 0`, settled with no write in flight.
    if expires_at <= now or state.split(maxsplit=2)[:2] != [b"%d" % version, b"0"]:
        return None
    return Entry(version, expires_at, f'"{etag.hex()}"', entry[HEADER.size :])
