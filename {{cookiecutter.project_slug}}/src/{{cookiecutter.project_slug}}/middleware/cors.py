"""CORS for browser clients: Starlette's CORSMiddleware, configured from CORS_ORIGINS.

A stored cache entry holds only a body and its ETag, and every response gets its CORS headers on
the way out, for the Origin of the request it answers: here, or from the same configuration
(CORSHeaders) for a HIT, a 304 included, that the cache's edge answers in front of the stack.
One entry serves every allowed origin, and an origin that filled it is never replayed to
another. Every response says `Vary: Origin` (with the `Authorization` the edge adds), so no HTTP
cache downstream mixes them up either.

A preflight (OPTIONS with Access-Control-Request-Method) is answered here and goes no further:
it carries no token, so authentication never sees it, and the cache never counts or stores it.
Inside RequestContextMiddleware, so preflights and refusals carry a request id like any
response; outside the body limit, so a browser can read its 413.
"""

from functools import partial

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.settings import Settings

# Request headers a page may send: the token, a JSON body's type, a conditional GET, its own
# request id, and `Cache-Control: no-store` to bypass the cache.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-None-Match",
    "X-Request-ID",
    "Cache-Control",
)
# The methods the API's routes answer; add any a new route uses.
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
# Response headers a page may read besides the CORS-safelisted ones: whether the cache answered,
# the id to quote in a bug report, the ETag for If-None-Match, and how long to wait after a 503.
EXPOSED_HEADERS = ("X-FastAPI-Cache", "X-Request-ID", "ETag", "Retry-After")
# How long a browser may reuse a preflight's answer, in seconds.
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_for(settings: Settings, app: ASGIApp) -> ASGIApp:
    """`app` behind Starlette's CORSMiddleware as `settings` say; `app` itself with no origins."""
    if not settings.cors_origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=settings.cors_origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=settings.cors_allow_credentials,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )


class CORSFromSettingsMiddleware:
    """Starlette's CORSMiddleware built from the settings the lifespan resolved.

    The middleware stack is built before the lifespan has run (a test's settings override
    included), so the configured middleware is made on the first request, and again if the
    app is started with other settings.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.settings: Settings | None = None
        self.configured: ASGIApp = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        if settings is not self.settings:
            self.settings, self.configured = settings, cors_for(settings, self.app)
        await self.configured(scope, receive, send)


class CORSHeaders:
    """The same CORS headers for a response sent in front of the stack (a HIT at the edge)."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.configured: CORSMiddleware | None = None

    def sending(self, settings: Settings, scope: Scope, send: Send) -> Send:
        """`send`, adding the CORS headers of the request `scope` describes, if any are set."""
        if settings is not self.settings:
            # Only the middleware's response headers are used: its app is never called.
            configured = cors_for(settings, unused_app)
            self.settings = settings
            self.configured = configured if isinstance(configured, CORSMiddleware) else None
        if self.configured is None:
            return send
        return partial(self.configured.send, send=send, request_headers=Headers(scope=scope))


async def unused_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("CORSHeaders never calls the middleware's app")
