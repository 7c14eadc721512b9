"""The response cache at the ASGI edge: a HIT is answered in front of the whole stack.

main.py puts EdgeCacheMiddleware before FastAPI's own layers and this project's middleware. For
a GET to a route decorated with `@cached_response`, it looks for the response before any of
them, or routing, or a dependency, runs:

1. the worker's local tier (local.py), where there is one: no round trip;
2. the shared tier: one read of every key involved (keys.py), all checked against their
   versions (entries.py): the caller's identity (a revoked token is never answered), the
   namespace version and the entry;
3. otherwise the request goes on through the stack to its route, where `@cache` computes the
   response once (flight.py) and stores the bytes this middleware sends on later HITs.

The layers a HIT skips cost more than the HIT itself (the README's Performance section), so it
gets here what they give every other response: its request id (request_context.py), its
metrics, and the CORS headers of a browser's request (cors.py). The request id is set before
the lookup, so that what the lookup logs carries it, and the metrics' Lookup for every request;
the middleware further in keeps both.

CachedResponseHeadersMiddleware, inside the stack, gives every response `@cache` computed the
HTTP semantics of a HIT, whichever worker answers: a strong ETag from the body (fastapi-cache2's
comes from Python's hash(), which differs per process), 304 for a matching If-None-Match,
`private` and `Vary: Authorization` for requests with credentials. A request's `no-store`
bypasses the cache; `no-cache` is ignored, because writes invalidate (a cached response is never
stale) and clients must not force recomputation.
"""

import logging
import time

from opentelemetry.trace import Span
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }} import metrics, tracing
from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.decorator import CachePolicy, cache_policy
from {{ cookiecutter.project_slug }}.cache.entries import Entry, etag_for, valid_entry
from {{ cookiecutter.project_slug }}.context import request_id_var
from {{ cookiecutter.project_slug }}.middleware.cors import CORSHeaders
from {{ cookiecutter.project_slug }}.middleware.request_context import (
    REQUEST_ID_FIELD,
    accepted_request_id,
)
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)

CACHE_STATUS_HEADER = "x-fastapi-cache"
CACHE_STATUS_FIELD = CACHE_STATUS_HEADER.encode()
# A request's Cache-Control once the edge has normalized it (normalized_headers).
NO_STORE = (b"cache-control", b"no-store")
# Paths whose route was looked up, remembered up to this many (ids make paths many).
MAX_KNOWN_PATHS = 10_000

# A request's header values by lowercase name, as the ASGI server gives them.
RequestFields = dict[bytes, bytes]


class EdgeCacheMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[tuple[BaseRoute, CachePolicy]] = []
        self.refused: list[tuple[BaseRoute, CachePolicy]] = []
        self.known_paths: dict[str, tuple[BaseRoute, CachePolicy]] = {}
        self.cors_headers = CORSHeaders()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        lookup = metrics.Lookup()
        lookup_token = metrics.current_lookup.set(lookup)
        try:
            await self.serve(scope, receive, send, started, lookup)
        finally:
            metrics.current_lookup.reset(lookup_token)

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, started: float, lookup: metrics.Lookup
    ) -> None:
        span = tracing.current_span()  # None unless tracing is on
        headers = request_fields(scope)
        if b"cache-control" in headers:
            cache_control = [value for name, value in scope["headers"] if name == b"cache-control"]
            no_store = "no-store" in directives(cache_control)
            # In place, not a copy: the route routing records must reach this middleware.
            scope["headers"] = normalized_headers(scope, no_store)
            if no_store:
                lookup.bypassed = True
                if span is not None and (cached := self.cached_route(scope)) is not None:
                    tracing.mark_cache_lookup(span, cached[1].namespace, "bypass")
                await self.app(scope, receive, send)
                return
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if (cached := self.cached_route(scope)) is None:
            await self.app(scope, receive, send)
            self.learn(scope)
            return
        route, policy = cached
        request_id = accepted_request_id(headers.get(REQUEST_ID_FIELD))
        request_id_token = request_id_var.set(request_id)
        try:
            cache: ResponseCache = scope["app"].state.cache
            try:
                entry = await self.stored_response(cache, policy, headers, scope)
            except Exception:
                # Past the guard, which fails open on the cache server's errors: a bug here
                # costs a MISS, never an error.
                logger.exception("the edge lookup failed; the route answers")
                entry = None
            if entry is None:
                await self.app(scope, receive, send)
                return
            status, response_headers, body = hit_response(entry, headers, request_id)
            template = getattr(route, "path", "")
            if span is not None:
                # Routing, which names FastAPI's span, never sees this request.
                tracing.name_server_span(span, "GET", template)
                tracing.mark_cache_lookup(span, policy.namespace, "hit", lookup.tier)
                if scope["query_string"]:
                    tracing.hide_query_values(span, scope["query_string"])
            settings: Settings = scope["app"].state.settings
            if settings.metrics_enabled:
                # Before the bytes go out (metrics.Batch says when the count is written).
                seconds = time.perf_counter() - started
                counted = (policy.namespace, "hit", lookup.tier)
                metrics.count_request("GET", template, status, seconds, counted)

            send = self.cors_headers.sending(settings, scope, send)
            await send_response(send, status, response_headers, body)
        finally:
            request_id_var.reset(request_id_token)

    def cached_route(self, scope: Scope) -> tuple[BaseRoute, CachePolicy] | None:
        """The route that serves this GET and its caching policy, once a response showed it.

        Routes are learned from the requests routing served (FastAPI records the route in the
        scope), so the edge matches only cached routes, with their own matching. A path that a
        cached route matches but another route serves costs a lookup and nothing else: entries
        exist only for requests their own route answered.
        """
        path = scope["path"]
        if (cached := self.known_paths.get(path)) is not None:
            return cached
        for route, policy in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                if len(self.known_paths) >= MAX_KNOWN_PATHS:
                    self.known_paths.clear()
                self.known_paths[path] = (route, policy)
                return route, policy
        return None

    def learn(self, scope: Scope) -> None:
        route = scope.get("route")
        policy = cache_policy(scope.get("endpoint"))
        known = any(route is learned for learned, _ in self.routes + self.refused)
        if not isinstance(route, BaseRoute) or policy is None or known:
            return
        if getattr(route, "response_model", None) != policy.returns:
            # The stored bytes serialize the return annotation; sent as they are, they could
            # carry fields the response model filters out. The route's own HITs still pass
            # through the model, so it stays cached, only not at the edge.
            logger.error(
                "%s: response_model differs from the return annotation; its HITs are not "
                "answered at the edge",
                getattr(route, "path", route),
            )
            self.refused.append((route, policy))
            return
        self.routes.append((route, policy))

    async def stored_response(
        self, cache: ResponseCache, policy: CachePolicy, headers: RequestFields, scope: Scope
    ) -> Entry | None:
        token = ""
        if policy.per_user:
            bearer = keys.bearer_token(header_text(headers.get(b"authorization")))
            if bearer is None:
                return None  # the route answers 401
            token = bearer
        request_key = keys.request_digest(scope, token)
        now = time.time()
        local = cache.local
        if local is not None and (entry := local.get(request_key, now)) is not None:
            metrics.note_local_hit()
            return entry
        checked = checked_keys(cache.prefix, policy, token, request_key)
        if checked is None:
            return None  # not a token this service issued: the route answers 401
        generation = 0 if local is None else local.generation
        values = await cache.read(checked)
        read: list[tuple[str, Entry]] = []
        for state_key, state, stored in zip(checked[::2], values[::2], values[1::2], strict=True):
            if (entry := valid_entry(state, stored, now)) is None:
                return None
            read.append((state_key, entry))
        if local is not None:
            local.keep(generation, request_key, read)
        return read[-1][1]


def checked_keys(
    prefix: str, policy: CachePolicy, token: str, request_key: str
) -> list[str] | None:
    """The (state, entry) key pairs a HIT reads together, every one of which must be valid: the
    caller's identity for a per-user namespace, then the response. None for a token that
    names no user."""
    partition = keys.shared_partition(policy.namespace)
    checked: list[str] = []
    if policy.per_user:
        if (user_id := keys.token_owner(token)) is None:
            return None
        identity = keys.identity_key(prefix, user_id, token)
        checked = [keys.state_key(identity), identity]
        partition = keys.user_partition(user_id)
    namespace = keys.namespace_key(prefix, partition, policy.namespace)
    return [*checked, keys.namespace_state_key(namespace), f"{namespace}:{request_key}"]


def request_fields(scope: Scope) -> RequestFields:
    """The request's headers by name, read in one pass (a HIT reads four of them)."""
    # Reversed, so that the first of repeated headers wins, as with Starlette's Headers.get,
    # which authentication reads the token with.
    return dict(reversed(scope["headers"]))


def header_text(value: bytes | None) -> str | None:
    """A header's value as Starlette's Headers would give it."""
    return None if value is None else value.decode("latin-1")


def directives(cache_control: list[bytes]) -> set[str]:
    """The directive names of every Cache-Control header of a request, parsed once."""
    return {
        part.split("=")[0].strip().lower()
        for value in cache_control
        for part in value.decode("latin-1").split(",")
    }


def normalized_headers(scope: Scope, no_store: bool) -> list[tuple[bytes, bytes]]:
    """The request's headers with Cache-Control reduced to what this service honours.

    fastapi-cache2 skips the cache only for the exact value `no-store`, and recomputes for the
    exact value `no-cache`; after this, it sees `no-store` or nothing.
    """
    headers = [(name, value) for name, value in scope["headers"] if name != b"cache-control"]
    if no_store:
        headers.append(NO_STORE)
    return headers


def not_modified(request_headers: RequestFields, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (weakly, as RFC 9110 asks)."""
    if (if_none_match := header_text(request_headers.get(b"if-none-match"))) is None:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return "*" in candidates or etag in (candidate.removeprefix("W/") for candidate in candidates)


def hit_response(
    entry: Entry, request_headers: RequestFields, request_id: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and body of a HIT: 304 for a matching If-None-Match, else 200."""
    credentials = b"authorization" in request_headers
    cache_control = f"{'private, ' if credentials else ''}max-age={entry.ttl(time.time())}"
    headers = [
        (b"etag", entry.etag.encode()),
        (b"cache-control", cache_control.encode()),
        (CACHE_STATUS_FIELD, b"HIT"),
        (REQUEST_ID_FIELD, request_id.encode()),
    ]
    if credentials:
        headers.append((b"vary", b"Authorization"))
    if not_modified(request_headers, entry.etag):
        return 304, headers, b""
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(entry.body)).encode()),
    ]
    return 200, headers, entry.body


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_not_modified(headers: MutableHeaders, send: Send) -> None:
    """A 304 with the response's headers, less those that describe the body it does not carry."""
    for name in ("content-length", "content-type"):
        if name in headers:
            del headers[name]
    await send_response(send, 304, headers.raw, b"")


class CachedResponseHeadersMiddleware:
    """Gives the responses `@cache` computed the HTTP semantics of a HIT (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The edge left a bypassing request's Cache-Control as `no-store`, alone.
        if scope["type"] != "http" or scope["method"] != "GET" or NO_STORE in scope["headers"]:
            await self.app(scope, receive, send)
            return
        span = tracing.current_span()
        await self.app(scope, receive, finishing(request_fields(scope), send, scope, span))


def finishing(request_headers: RequestFields, send: Send, scope: Scope, span: Span | None) -> Send:
    """`send`, giving responses computed by `@cache` the HTTP semantics of a HIT."""
    start: Message | None = None
    body = bytearray()

    async def send_finished(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            if (status := Headers(raw=message["headers"]).get(CACHE_STATUS_HEADER)) is not None:
                start = message  # held until the whole body is known
                mark_computed(span, scope, status)
            else:
                await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["etag"] = etag = etag_for(bytes(body))
        if b"authorization" in request_headers:
            headers["cache-control"] = f"private, {headers.get('cache-control', 'max-age=0')}"
            headers.add_vary_header("Authorization")
        if not_modified(request_headers, etag):
            await send_not_modified(headers, send)
            return
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": bytes(body)})

    return send_finished


def mark_computed(span: Span | None, scope: Scope, cache_status: str) -> None:
    """Mark the request span with what `@cache` answered: a MISS (error: the cache failed)."""
    if span is None or (policy := cache_policy(scope.get("endpoint"))) is None:
        return
    lookup = metrics.current_lookup.get()
    if cache_status == "HIT":  # a route whose HITs are not answered at the edge (see learn)
        tracing.mark_cache_lookup(span, policy.namespace, "hit", "shared")
    else:
        failed = lookup is not None and lookup.failed
        tracing.mark_cache_lookup(span, policy.namespace, "error" if failed else "miss")
