"""OpenTelemetry traces, set up only when the standard environment variables ask for them.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns export on, over
OTLP/HTTP protobuf; the SDK itself reads `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*` and the rest. With no endpoint, or with
`OTEL_SDK_DISABLED=true`, the SDK is not even imported: no provider, no exporter thread, and
FastAPI's request spans stay off (main.py), so a request pays nothing for tracing.

The spans: FastAPI's own SERVER span per request (named `GET /api/items/{item_id}`, a child of
the caller's `traceparent`), which the cache's edge names and marks for the HITs it answers
before routing; SQLAlchemy's spans for every statement (with placeholders, never parameters);
the cache client's commands where an instrumentation exists (Redis: `MGET ? ?`, never keys or
values); httpx's spans for outgoing calls, which carry `traceparent` onwards.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import version

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import AsyncEngine

# At shutdown, the spans still queued get this long to leave; a collector that is down must
# not hold up a restart.
FLUSH_SECONDS = 5.0
PACKAGE = __name__.partition(".")[0]
# Where the httpx instrumentation records the URL (the newer and the older semantic conventions).
URL_ATTRIBUTES = ("url.full", "http.url")


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def tracing_enabled() -> bool:
    """Whether this process records spans: a tracer provider was installed (here or by a test)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def configure_tracing() -> bool:
    """Install the OTLP exporting provider once per process, if asked; True if tracing is on."""
    if not tracing_enabled() and tracing_requested():
        # Imported here: a process that does not trace never loads the SDK.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({SERVICE_VERSION: version(PACKAGE)})
        if resource.attributes.get(SERVICE_NAME) == "unknown_service":
            # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names the service.
            resource = resource.merge(Resource({SERVICE_NAME: PACKAGE}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return tracing_enabled()


@asynccontextmanager
async def traced(engine: AsyncEngine, http_client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Trace the database and outgoing HTTP calls while the app runs; flush spans at the end."""
    if not tracing_enabled():
        yield
        return
    sqlalchemy = SQLAlchemyInstrumentor()
    # Its declared range stops below SQLAlchemy 2.1, which it traces correctly (the tests
    # check the spans): skip the check rather than lose the database spans.
    sqlalchemy.instrument(engine=engine.sync_engine, skip_dep_check=True)
    HTTPXClientInstrumentor.instrument_client(http_client, request_hook=hide_url)
    try:
        yield
    finally:
        HTTPXClientInstrumentor.uninstrument_client(http_client)
        sqlalchemy.uninstrument()
        await flush()


async def hide_url(span: trace.Span, request: object) -> None:
    """Keep only the origin of an outgoing URL: a webhook's path or query may hold its secret."""
    url = getattr(request, "url", None)
    recorded = getattr(span, "attributes", None) or {}
    if isinstance(url, httpx.URL):
        for name in URL_ATTRIBUTES:
            if name in recorded:
                span.set_attribute(name, f"{url.scheme}://{url.netloc.decode()}/")


async def flush() -> None:
    """Send the spans still queued, waiting at most FLUSH_SECONDS (the exporter blocks)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        await asyncio.to_thread(force_flush, int(FLUSH_SECONDS * 1000))


def tracer() -> trace.Tracer:
    """This package's tracer, from the provider installed now (tests install their own)."""
    return trace.get_tracer(PACKAGE)


def current_span() -> trace.Span | None:
    """The active span if it records, else None: callers skip building attributes for nothing."""
    span = trace.get_current_span()
    return span if span.is_recording() else None


def hide_query_values(span: trace.Span, query_string: bytes) -> None:
    """Keep only the names of `url.query`: a caller may put a token in a value."""
    names = (pair.partition(b"=")[0].decode("latin-1") for pair in query_string.split(b"&"))
    span.set_attribute("url.query", "&".join(f"{name}=REDACTED" for name in names if name))


def name_server_span(span: trace.Span, method: str, route: str) -> None:
    """What routing does for FastAPI's span, for a request answered before routing."""
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)


def mark_cache_lookup(
    span: trace.Span | None, namespace: str, result: str, tier: str | None = None
) -> None:
    """Put what the cache answered on `span`: `result` hit, miss, bypass or error."""
    if span is None:
        return
    span.set_attribute("cache.namespace", namespace)
    span.set_attribute("cache.result", result)
    if tier is not None:
        span.set_attribute("cache.tier", tier)
