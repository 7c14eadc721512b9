"""Request ids, log lines and the one error shape, through the real application."""

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.logs import ACCESS_LOGGER, configure_logging
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from tests.conftest import SettingsFactory, running

pytestmark = pytest.mark.anyio

SECRET_IN_ERROR = "s3cr3t-value-from-a-failing-route"


def failing_router() -> APIRouter:
    router = APIRouter()

    @router.get("/probe/crash")
    async def crash() -> None:
        raise RuntimeError(f"failure carrying {SECRET_IN_ERROR}")

    return router


@asynccontextmanager
async def client_with_crash_route(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(failing_router())
    async with running(app) as client:
        yield client


async def test_a_safe_incoming_request_id_is_kept_and_echoed(client: AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "trace-42.a:b_c"})

    assert response.headers["X-Request-ID"] == "trace-42.a:b_c"


@pytest.mark.parametrize(
    "incoming",
    ["x" * 129, "has space", "semi;colon", "<script>", "-leading-dash", "ünïcode"],
)
async def test_an_unsafe_incoming_request_id_is_replaced(
    client: AsyncClient, incoming: str
) -> None:
    response = await client.get("/health/live", headers=[(b"X-Request-ID", incoming.encode())])

    replaced = response.headers["X-Request-ID"]
    assert replaced != incoming
    parsed = uuid.UUID(replaced)
    assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    assert str(parsed) == replaced  # the canonical lowercase, hyphenated form


async def test_every_response_gets_its_own_request_id(client: AsyncClient) -> None:
    ids = {(await client.get("/health/live")).headers["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        ("GET", "/api/items", 401, "Not authenticated"),
        ("GET", "/no/such/route", 404, "Not Found"),
        ("PATCH", "/health/live", 405, "Method Not Allowed"),
    ],
)
async def test_http_errors_share_one_shape_with_the_request_id(
    client: AsyncClient, method: str, path: str, status: int, detail: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == status
    assert response.json() == {"detail": detail, "request_id": response.headers["X-Request-ID"]}


async def test_validation_errors_list_the_problems_without_echoing_the_input(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    submitted = "n" * 201

    response = await client.post("/api/items", json={"name": submitted}, headers=alice)

    assert response.status_code == 422
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    [problem] = body["detail"]
    assert problem["loc"] == ["body", "name"]
    assert problem["type"] == "string_too_long"
    assert submitted not in response.text


async def test_a_crash_is_a_bare_500_and_a_json_log_line_with_the_same_request_id(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(environment="production")
    async with client_with_crash_route(settings) as client:
        response = await client.get("/probe/crash", headers={"X-Request-ID": "crash-1"})
        await client.get("/health/ready")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "request_id": "crash-1"}
    assert response.headers["X-Request-ID"] == "crash-1"
    assert SECRET_IN_ERROR not in response.text
    assert "Traceback" not in response.text
    output = capsys.readouterr().err
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    [logged] = [line for line in lines if "exception" in line]
    assert logged["request_id"] == "crash-1"
    assert logged["level"] == "ERROR"
    assert "RuntimeError" in logged["exception"]
    # Every line is JSON (json.loads above), and no setting's secret is in any of them.
    assert settings.secret_key.get_secret_value() not in output
    assert settings.database_url.get_secret_value() not in output


async def test_a_crash_answered_to_a_page_carries_its_cors_headers(
    make_settings: SettingsFactory,
) -> None:
    """A page on an allowed origin can read the 500's request id, to quote in a bug report."""
    origin = "https://app.example.com"
    settings = make_settings(environment="production", cors_origins=[origin])
    async with client_with_crash_route(settings) as client:
        response = await client.get("/probe/crash", headers={"Origin": origin})

    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_development_logs_are_readable_lines_with_the_request_id(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with client_with_crash_route(make_settings(environment="development")) as client:
        await client.get("/probe/crash", headers={"X-Request-ID": "dev-1"})

    output = capsys.readouterr().err
    assert re.search(
        r"^\S+ \S+ ERROR +\[dev-1\] [\w.]+unhandled_errors: unhandled error in GET /probe/crash$",
        output,
        re.MULTILINE,
    ), output


@pytest.mark.parametrize("access_log", [True, False])
def test_access_lines_follow_the_servers_option(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, access_log: bool
) -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    monkeypatch.setattr(access, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(access, "propagate", False)
    if not access_log:
        access.handlers = []  # what `uvicorn --no-access-log` leaves

    configure_logging(settings)

    # uvicorn writes access lines only where the logger has a handler, its own or inherited.
    assert access.hasHandlers() is access_log
    assert access.handlers == []  # uvicorn's own handler is replaced by the root's
