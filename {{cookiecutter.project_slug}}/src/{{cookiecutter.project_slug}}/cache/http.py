"""HTTP semantics around cached responses: ETag, 304, Cache-Control, on every worker alike.

fastapi-cache2 derives its ETag from Python's hash(), which differs per process, so a 304 only
works when the same worker answers; the ETag is also unquoted. It honours a request's
Cache-Control only when the whole header is exactly `no-store` or `no-cache`, and `no-cache` lets
any client force a recomputation. This middleware settles all of that for responses that carry
fastapi-cache2's X-FastAPI-Cache header:

- ETag: a strong, quoted hash of the response body, equal for equal bytes in any process;
  If-None-Match with it answers 304 without a body.
- A request whose Cache-Control contains `no-store` bypasses the cache (nothing read or stored).
- A request's `no-cache` is ignored: writes invalidate the cache, so a cached response is never
  stale, and clients must not be able to force recomputation storms.
- Responses to requests with credentials are `Cache-Control: private` and vary on Authorization,
  so shared HTTP caches never hand one user's response to another.
"""

import hashlib
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CACHE_STATUS_HEADER = "x-fastapi-cache"


def canonical_query(query_string: bytes) -> str:
    """The query string with its parameters sorted: the same request, whatever their order."""
    parameters = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urlencode(sorted(parameters))


def etag_for(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    # Weak comparison, as RFC 9110 asks for If-None-Match.
    return "*" in candidates or etag in (candidate.removeprefix("W/") for candidate in candidates)


async def send_not_modified(headers: MutableHeaders, send: Send) -> None:
    """A 304 with the response's headers, less those that describe the body it does not carry."""
    for name in ("content-length", "content-type"):
        if name in headers:
            del headers[name]
    await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
    await send({"type": "http.response.body", "body": b""})


def normalized_request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    headers = [(name, value) for name, value in scope["headers"] if name != b"cache-control"]
    directives = {
        directive.split("=")[0].strip().lower()
        for name, value in scope["headers"]
        if name == b"cache-control"
        for directive in value.decode("latin-1").split(",")
    }
    if "no-store" in directives:
        headers.append((b"cache-control", b"no-store"))  # the exact form fastapi-cache2 honours
    return headers


class HttpCacheMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope, headers=normalized_request_headers(scope))
        request_headers = Headers(scope=scope)
        if_none_match = request_headers.get("if-none-match")
        has_credentials = "authorization" in request_headers
        start: Message | None = None
        body = bytearray()

        async def send_with_cache_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if CACHE_STATUS_HEADER in Headers(raw=message["headers"]):
                    start = message  # hold it until the whole body is known
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers = MutableHeaders(raw=list(start["headers"]))
            etag = etag_for(bytes(body))
            headers["etag"] = etag
            if has_credentials:
                headers["cache-control"] = f"private, {headers.get('cache-control', 'max-age=0')}"
                headers.add_vary_header("Authorization")
            if if_none_match is not None and etag_matches(if_none_match, etag):
                await send_not_modified(headers, send)
                return
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, send_with_cache_headers)
