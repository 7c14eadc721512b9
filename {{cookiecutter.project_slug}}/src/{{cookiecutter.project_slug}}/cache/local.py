"""Each worker's own copy of the cached responses it served: HITs answered before routing.

The cache server holds the responses every worker shares. On top of that, each worker keeps the
responses it has sent recently and answers a repeated request from that copy before routing,
dependencies or any round trip to the cache server. The copy is never stale:

- An entry is stored only for a request that went the whole way (token checked, scope required,
  response produced by fastapi-cache2) and is keyed by that token's HMAC and the canonical
  request: it is served only to the same token asking for the same thing.
- Every invalidation (a write bumping a namespace, a token revoked) drops the matching entries in
  the worker that made it, before its response, and is published through the cache server to
  every other worker (Redis pub/sub), which drops them too. Redis delivers the message to the
  subscribers before it answers the publisher, so before the write's 2xx goes out.
- A request that started before an invalidation does not store what it read (generations).
- While the invalidation channel is down nothing is served or stored here, and what was stored
  is dropped: messages may have been missed.
- An entry lives no longer than the shared entry's remaining TTL, nor than
  AUTH_CACHE_TTL_SECONDS, so a token revoked behind the API's back stops working as soon as it
  would through the identity cache.
"""

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.cache.http import (
    CACHE_STATUS_HEADER,
    canonical_query,
    etag_matches,
    send_not_modified,
)

MAX_AGE = re.compile(r"max-age=\d+")
# An entry larger than this share of the budget is not kept: it would evict too many others.
LARGEST_ENTRY_SHARE = 16

RequestKey = tuple[str, str, str]  # (token HMAC or "", path, canonical query)
# Where the key builder leaves its Ticket in the request's state.
TICKET = "local_cache_ticket"


@dataclass(frozen=True, slots=True)
class LocalEntry:
    headers: list[tuple[bytes, bytes]]
    cache_control: str
    etag: str
    body: bytes
    expires_at: float
    scope: str
    token: str


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken when a cached route reads its namespace version; redeemed to store the response."""

    scope: str
    generation: int


class LocalResponseCache:
    def __init__(
        self, max_bytes: int, max_lifetime_seconds: int, token_hash: Callable[[str], str]
    ) -> None:
        self.max_bytes = max_bytes
        self.max_lifetime_seconds = max_lifetime_seconds
        # The same keyed hash the database stores, so revocations name tokens the same way.
        self.token_hash = token_hash
        self.enabled = False
        # Any invalidation or reconnection moves it on; a ticket of an older one is void.
        self.generation = 0
        self._entries: OrderedDict[RequestKey, LocalEntry] = OrderedDict()
        self._by_scope: dict[str, set[RequestKey]] = {}
        self._by_token: dict[str, set[RequestKey]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self, scope: str) -> Ticket | None:
        return Ticket(scope, self.generation) if self.enabled else None

    def get(self, key: RequestKey, now: float) -> LocalEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: RequestKey, entry: LocalEntry, ticket: Ticket) -> None:
        size = len(entry.body)
        if not self.enabled or ticket.generation != self.generation:
            return
        if size * LARGEST_ENTRY_SHARE > self.max_bytes:
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = entry
        self._by_scope.setdefault(entry.scope, set()).add(key)
        self._by_token.setdefault(entry.token, set()).add(key)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    # Invalidation

    def drop_scope(self, scope: str) -> None:
        self.generation += 1
        for key in self._by_scope.pop(scope, set()):
            self._remove(key)

    def drop_token(self, token: str) -> None:
        self.generation += 1
        for key in self._by_token.pop(token, set()):
            self._remove(key)

    def apply(self, message: str) -> None:
        """An invalidation announced by any worker: `scope:<scope>` or `token:<HMAC>`."""
        kind, _, subject = message.partition(":")
        if kind == "scope":
            self.drop_scope(subject)
        elif kind == "token":
            self.drop_token(subject)

    def connected(self) -> None:
        self.generation += 1
        self.enabled = True

    def disconnected(self) -> None:
        """Messages may be missed from now on: forget everything and stop serving."""
        self.generation += 1
        self.enabled = False
        self._entries.clear()
        self._by_scope.clear()
        self._by_token.clear()
        self._bytes = 0

    def _remove(self, key: RequestKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= len(entry.body)
        for index, name in ((self._by_scope, entry.scope), (self._by_token, entry.token)):
            keys = index.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[name]


class LocalCacheMiddleware:
    """Answers a GET from the worker's local copy when it has one; otherwise fills the copy.

    It runs inside RequestContextMiddleware (so local HITs get a request id too) and outside
    HttpCacheMiddleware, whose final headers (ETag, Cache-Control, Vary) it stores.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache: LocalResponseCache | None = getattr(scope["app"].state, "local_cache", None)
        if scope["type"] != "http" or scope["method"] != "GET" or cache is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Checked first: the key costs an HMAC of the token.
        if not cache.enabled or "no-store" in headers.get("cache-control", ""):
            await self.app(scope, receive, send)
            return
        key = request_key(cache, headers.get("authorization"), scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        entry = cache.get(key, now)
        if entry is not None:
            await send_entry(entry, headers.get("if-none-match"), now, send)
            return
        await self.fill(cache, key, scope, receive, send)

    async def fill(
        self, cache: LocalResponseCache, key: RequestKey, scope: Scope, receive: Receive, send: Send
    ) -> None:
        state = scope.setdefault("state", {})
        start: Message | None = None
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                # The key builder has run by now: only cached routes leave a ticket.
                if message["status"] == 200 and TICKET in state:
                    start = message
            elif message["type"] == "http.response.body" and start is not None:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if start is not None:
            entry = entry_from(start, bytes(body), key, state[TICKET], cache, time.monotonic())
            if entry is not None:
                cache.put(key, entry, state[TICKET])


def request_key(
    cache: LocalResponseCache, authorization: str | None, scope: Scope
) -> RequestKey | None:
    """The local key, or None for credentials other than a bearer token (left to the route)."""
    token = ""
    if authorization is not None:
        # HTTPBearer's own parser: the token hashed here is exactly the one auth.py hashes, so a
        # revocation names the same token whatever spacing the header had.
        scheme, credentials = get_authorization_scheme_param(authorization)
        if scheme.lower() != "bearer" or not credentials:
            return None
        token = cache.token_hash(credentials)
    return token, scope["path"], canonical_query(scope["query_string"])


def entry_from(
    start: Message,
    body: bytes,
    key: RequestKey,
    ticket: Ticket,
    cache: LocalResponseCache,
    now: float,
) -> LocalEntry | None:
    headers = MutableHeaders(raw=list(start["headers"]))
    cache_control = headers.get("cache-control", "")
    max_age = MAX_AGE.search(cache_control)
    etag = headers.get("etag")
    if CACHE_STATUS_HEADER not in headers or max_age is None or etag is None:
        return None
    lifetime = min(int(max_age.group().removeprefix("max-age=")), cache.max_lifetime_seconds)
    for name in ("cache-control", CACHE_STATUS_HEADER):
        del headers[name]
    return LocalEntry(
        headers=headers.raw,
        cache_control=cache_control,
        etag=etag,
        body=body,
        expires_at=now + lifetime,
        scope=ticket.scope,
        token=key[0],
    )


async def send_entry(entry: LocalEntry, if_none_match: str | None, now: float, send: Send) -> None:
    remaining = max(int(entry.expires_at - now), 0)
    headers = [
        *entry.headers,
        (b"cache-control", MAX_AGE.sub(f"max-age={remaining}", entry.cache_control).encode()),
        (CACHE_STATUS_HEADER.encode(), b"HIT"),
    ]
    if if_none_match is not None and etag_matches(if_none_match, entry.etag):
        await send_not_modified(MutableHeaders(raw=headers), send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})
