"""OpenTelemetry: the spans of a request through the edge cache, the database and httpx."""

import gzip
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_trace_globals
from opentelemetry.trace import SpanKind

from {{ cookiecutter.project_slug }}.auth import hash_token
from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.logs import JsonFormatter, RequestIdFilter
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.tracing import tracing_requested

from tests.conftest import MakeUser, SettingsFactory, bearer, running
from tests.upstream import running_upstream

ITEM_ROUTE = "GET /api/items/{item_id}"
CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Spans of this test, in memory: the global provider is this test's, then none again."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reset_trace_globals()
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    reset_trace_globals()


def traced_app(settings: Settings) -> FastAPI:
    app = create_app()  # after the provider is installed: FastAPI's spans are on
    app.dependency_overrides[get_settings] = lambda: settings
    return app


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]


def in_trace(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    spans = exporter.get_finished_spans()
    return [span for span in spans if span.context and span.context.trace_id == trace_id]


async def test_a_miss_and_a_hit_are_named_by_route_and_carry_the_cache_result(
    exporter: InMemorySpanExporter, settings: Settings, make_user: MakeUser
) -> None:
    _, token = await make_user("alice")
    async with running(traced_app(settings)) as client:
        created = await client.post("/api/items", json={"name": "a"}, headers=bearer(token))
        path = f"/api/items/{created.json()['id']}"
        exporter.clear()
        miss = await client.get(path, headers=bearer(token))
        hit = await client.get(path, headers=bearer(token))
        bypass = await client.get(path, headers={**bearer(token), "Cache-Control": "no-store"})
    assert [r.headers.get("x-fastapi-cache") for r in (miss, hit, bypass)] == ["MISS", "HIT", None]
    spans = server_spans(exporter)
    assert [span.name for span in spans] == [ITEM_ROUTE] * 3
    results = [dict(span.attributes or {}) for span in spans]
    assert [a["cache.result"] for a in results] == ["miss", "hit", "bypass"]
    assert {a["cache.namespace"] for a in results} == {"items"}
    assert results[1]["cache.tier"] == "shared"
    assert results[1]["http.route"] == "/api/items/{item_id}"
    # The MISS computed the response from the database, inside its own trace; the HIT did not.
    miss_context, hit_context = spans[0].context, spans[1].context
    assert miss_context is not None
    assert hit_context is not None
    database_systems = {
        (span.attributes or {}).get("db.system")
        for span in in_trace(exporter, miss_context.trace_id)
    }
    assert {{ '"sqlite"' if cookiecutter.database == "sqlite" else '"postgresql"' }} in database_systems
    hit_systems = {
        (span.attributes or {}).get("db.system")
        for span in in_trace(exporter, hit_context.trace_id)
    }
    assert hit_systems <= {None, "redis"}


async def test_the_request_span_is_a_child_of_the_callers_traceparent(
    exporter: InMemorySpanExporter, settings: Settings
) -> None:
    traceparent = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"
    async with running(traced_app(settings)) as client:
        response = await client.get("/health/live", headers={"traceparent": traceparent})
    assert response.status_code == 200
    (span,) = server_spans(exporter)
    assert span.name == "GET /health/live"
    assert span.context is not None
    assert span.parent is not None
    assert format(span.context.trace_id, "032x") == CALLER_TRACE_ID
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID


async def test_no_span_holds_a_token_or_its_hash(
    exporter: InMemorySpanExporter, settings: Settings, make_user: MakeUser
) -> None:
    _, token = await make_user("alice")
    token_hash = hash_token(token, settings.secret_key)
    async with running(traced_app(settings)) as client:
        created = await client.post("/api/items", json={"name": "a"}, headers=bearer(token))
        for _ in range(2):
            await client.get(f"/api/items/{created.json()['id']}", headers=bearer(token))
            await client.get("/api/me", headers=bearer(token))
            await client.get("/api/items?token=" + token, headers=bearer(token))
    exported = "".join(span.to_json() for span in exporter.get_finished_spans())
    assert len(exporter.get_finished_spans()) > 10
    hidden = (token, token.partition(".")[2], token_hash, keys.digest(token_hash))
    for secret in (*hidden, keys.digest(token)):
        assert secret not in exported
    assert "authorization" not in exported.lower()


async def test_outgoing_calls_carry_the_trace_onwards(
    exporter: InMemorySpanExporter, make_settings: SettingsFactory
) -> None:
    async with running_upstream() as upstream:
        settings = make_settings(upstream_status_url=f"{upstream.url}/status?key=s3cret")
        async with running(traced_app(settings)) as client:
            await client.get("/api/upstream")
    (received,) = upstream.received
    clients = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    http = [s for s in clients if s.name == "GET"]
    assert len(http) == 1
    assert http[0].context is not None
    trace_id = format(http[0].context.trace_id, "032x")
    assert received.headers["traceparent"].split("-")[1] == trace_id
    assert "s3cret" not in http[0].to_json()


def test_log_lines_written_in_a_span_carry_its_ids(exporter: InMemorySpanExporter) -> None:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "inside", None, None)
    with trace.get_tracer("test").start_as_current_span("work") as span:
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    outside = logging.LogRecord("test", logging.INFO, __file__, 1, "outside", None, None)
    RequestIdFilter().filter(outside)
    assert "trace_id" not in json.loads(JsonFormatter().format(outside))


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_only_an_endpoint_turns_tracing_on(environ: dict[str, str], requested: bool) -> None:
    assert tracing_requested(environ) is requested


def test_without_an_endpoint_nothing_is_set_up() -> None:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    # The app with its lifespan run, then: which provider, which threads, FastAPI's spans.
    probe = """
import asyncio, threading
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from {{ cookiecutter.project_slug }}.main import app

async def main():
    async with LifespanManager(app):
        threads = sorted(thread.name for thread in threading.enumerate())
    print(type(trace.get_tracer_provider()).__name__, app._telemetry["tracing"], threads)

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )
    provider, fastapi_tracing, threads = result.stdout.split(" ", 2)
    assert (provider, fastapi_tracing) == ("ProxyTracerProvider", "False")
    assert "Otel" not in threads


async def test_spans_are_exported_over_otlp_and_flushed_at_shutdown(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_upstream() as collector:
        collector.status_code = 200
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "traced-service")
        reset_trace_globals()
        try:
            async with running(traced_app(settings)) as client:
                await client.get("/health/live")
            # The lifespan's end flushed the batch: the collector has it now, not "eventually".
            provider = trace.get_tracer_provider()
            assert isinstance(provider, TracerProvider)
            exports = [r for r in collector.received if r.path == "/v1/traces"]
        finally:
            shutdown: Callable[[], object] = getattr(trace.get_tracer_provider(), "shutdown", list)
            shutdown()
            reset_trace_globals()
    assert exports
    assert exports[0].headers["content-type"] == "application/x-protobuf"
    body = exports[0].body
    if exports[0].headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "traced-service"
    names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert "GET /health/live" in names
