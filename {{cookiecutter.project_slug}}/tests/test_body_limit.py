"""MAX_REQUEST_BODY_BYTES: larger bodies answer 413 before anything reads them into memory."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running

pytestmark = pytest.mark.anyio

LIMIT = 4096
CHUNK_BYTES = 256
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> AsyncIterator[AsyncClient]:
    """A client of an app whose body limit is LIMIT bytes."""
    async with running(make_app(make_settings(max_request_body_bytes=LIMIT))) as client:
        yield client


def item_body(size: int) -> bytes:
    """A valid item write of exactly `size` bytes, padded with JSON whitespace."""
    item = b'{"name": "lamp"}'
    return item[:-1] + b" " * (size - len(item)) + b"}"


class ChunkedBody:
    """A request body without a length, streamed in chunks; counts what was pulled from it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), CHUNK_BYTES):
            chunk = self.body[start : start + CHUNK_BYTES]
            self.pulled += len(chunk)
            yield chunk


def assert_too_large(response: Any) -> None:
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is larger than {LIMIT} bytes",
        "request_id": response.headers["X-Request-ID"],
    }
    # The rest of the body is not worth reading: the connection closes after the 413.
    assert response.headers["Connection"] == "close"


async def test_a_content_length_over_the_limit_answers_413_and_the_route_never_runs(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.post("/api/items", content=item_body(LIMIT + 1), headers=alice | JSON)

    assert_too_large(response)
    assert (await client.get("/api/items", headers=alice)).json() == []


async def test_the_limit_comes_before_authentication(client: AsyncClient) -> None:
    response = await client.post("/api/items", content=item_body(LIMIT + 1), headers=JSON)

    assert_too_large(response)


async def test_a_chunked_body_is_cut_off_as_soon_as_it_crosses_the_limit(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    body = ChunkedBody(item_body(100 * LIMIT))

    response = await client.post("/api/items", content=body, headers=alice | JSON)

    assert_too_large(response)
    assert "Content-Length" not in response.request.headers
    # Read up to the chunk that crossed the limit, and not one chunk more.
    assert LIMIT < body.pulled <= LIMIT + CHUNK_BYTES
    assert (await client.get("/api/items", headers=alice)).json() == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_at_the_limit_still_works(
    client: AsyncClient, alice: dict[str, str], chunked: bool
) -> None:
    body = item_body(LIMIT)

    response = await client.post(
        "/api/items", content=ChunkedBody(body) if chunked else body, headers=alice | JSON
    )

    assert response.status_code == 201
    assert response.json()["name"] == "lamp"


async def test_the_default_limit_is_one_mebibyte(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI], alice: dict[str, str]
) -> None:
    settings = make_settings()
    async with running(make_app(settings)) as client:
        within = await client.post("/api/items", content=item_body(2**20), headers=alice | JSON)
        over = await client.post("/api/items", content=item_body(2**20 + 1), headers=alice | JSON)

    assert settings.max_request_body_bytes == 2**20
    assert within.status_code == 201
    assert over.status_code == 413


async def test_openapi_lists_the_413_on_every_operation_with_a_body(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    operations = [
        operation for path_item in schema["paths"].values() for operation in path_item.values()
    ]
    with_body = [operation for operation in operations if "requestBody" in operation]
    without_body = [operation for operation in operations if "requestBody" not in operation]
    assert with_body
    for operation in with_body:
        too_large = operation["responses"]["413"]
        assert too_large["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert all("413" not in operation["responses"] for operation in without_body)
    assert "ErrorResponse" in schema["components"]["schemas"]
