"""The application factory and the lifespan that owns every long-lived resource."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_cache import FastAPICache
from starlette.types import ASGIApp

from {{ cookiecutter.project_slug }}.api import (
    docs,
    health,
    items,
    metrics,
    stats,
    upstream,
    users,
)
from {{ cookiecutter.project_slug }}.cache import {{ cookiecutter.cache_backend }} as cache_store
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.edge import (
    CachedResponseHeadersMiddleware,
    EdgeCacheMiddleware,
)
from {{ cookiecutter.project_slug }}.cache.guard import Guard
from {{ cookiecutter.project_slug }}.db.database import open_database
from {{ cookiecutter.project_slug }}.db.{{ cookiecutter.database }} import create_engine
from {{ cookiecutter.project_slug }}.error_reporting import configure_error_reporting
from {{ cookiecutter.project_slug }}.errors import install_error_handlers
from {{ cookiecutter.project_slug }}.http_client import open_http_client
from {{ cookiecutter.project_slug }}.logs import configure_logging
from {{ cookiecutter.project_slug }}.metrics import reporting_worker, watch_pool
from {{ cookiecutter.project_slug }}.middleware.body_limit import (
    RequestBodyLimitMiddleware,
    document_request_body_limit,
)
from {{ cookiecutter.project_slug }}.middleware.cors import CORSFromSettingsMiddleware
from {{ cookiecutter.project_slug }}.middleware.metrics import MetricsMiddleware
from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware
from {{ cookiecutter.project_slug }}.middleware.unhandled_errors import UnhandledErrorMiddleware
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.tracing import configure_tracing, traced


def resolve_settings(app: FastAPI) -> Settings:
    """The settings `app` runs with: a test's `dependency_overrides[get_settings]` if set.

    The lifespan keeps them on `app.state.settings`, where SettingsDep reads them, so one
    override configures both the lifespan's resources and every request.
    """
    provider = app.dependency_overrides.get(get_settings, get_settings)
    settings: Settings = provider()
    return settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the database engine, the cache client and the HTTP client once; close them at exit."""
    settings = resolve_settings(app)
    configure_logging(settings)
    configure_error_reporting(settings)
    async with (
        open_database(create_engine(settings)) as database,
        cache_store.open_store(settings) as (store, local),
        open_http_client(settings) as http_client,
        traced(database.engine, http_client),
        reporting_worker(),
    ):
        watch_pool(database.engine)
        guard = Guard(
            timeout_seconds=settings.cache_timeout_seconds,
            breaker_seconds=settings.cache_breaker_seconds,
            warning_interval_seconds=settings.cache_warning_interval_seconds,
            after_timeout=store.after_timeout,
        )
        cache = ResponseCache(
            store,
            guard,
            prefix=settings.cache_prefix,
            lock_seconds=settings.cache_lock_seconds,
            local=local,
        )
        app.state.settings = settings
        app.state.database = database
        app.state.cache = cache
        app.state.http_client = http_client
        # fastapi-cache2's `@cache` reaches the backend through its process-wide configuration
        # (one app per process); this project's code uses app.state.cache.
        FastAPICache.init(cache, prefix=settings.cache_prefix, expire=settings.cache_ttl_seconds)
        # Everything imported and built so far lives as long as the process: keep it out of the
        # garbage collector's full passes, whose pauses otherwise show in tail latencies.
        gc.freeze()
        try:
            yield
        finally:
            # Without a reset, a second init (another app in the same process) is ignored.
            FastAPICache.reset()


class EdgeCachedFastAPI(FastAPI):
    """FastAPI with the cache's edge in front of its whole middleware stack (cache/edge.py).

    A HIT is answered there, before FastAPI's own layers and the middleware added below, which
    together cost more than the HIT itself; the edge gives it what they would have.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return EdgeCacheMiddleware(super().build_middleware_stack())


def create_app() -> FastAPI:
    app = EdgeCachedFastAPI(
        title={{ cookiecutter.project_name | python_string }},
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry makes the SERVER span of each request (tracing.py). Off
        # when no exporter is configured: it would otherwise ask the global provider on every
        # request whether to trace. Metrics are Prometheus's (metrics.py); errors are logged.
        telemetry={
            "tracing": configure_tracing(),
            "metrics": False,
            "logs": False,
            # Spans around dependency resolution and serialization: one more layer of detail
            # than "why was this slow" needs (the cache, database and HTTP spans answer it).
            "operation_spans": False,
            "auto_configure": False,
        },
        # api/docs.py serves these pages and the schema, with local assets, unless API_DOCS=false.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    document_request_body_limit(app)
    # The last one added runs first (after the edge, which answers HITs in front of them all):
    # the request id must exist before anything else runs, CORS headers are added to every
    # response (the 500 for an unhandled error included) and preflights answered before
    # authentication sees them, responses `@cache` computed get their ETag and HIT headers,
    # and a body over MAX_REQUEST_BODY_BYTES is refused before anything reads it. Metrics,
    # the outermost of them, time all of it.
    app.add_middleware(RequestBodyLimitMiddleware)
    app.add_middleware(CachedResponseHeadersMiddleware)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(CORSFromSettingsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(items.router)
    app.include_router(stats.router)
    app.include_router(upstream.router)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    return app


app = create_app()
