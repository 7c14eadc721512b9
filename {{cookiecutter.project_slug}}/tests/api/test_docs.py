"""/docs and /redoc work with no network: every file they load is served by the app itself."""

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running

pytestmark = pytest.mark.anyio

# What the pages load: scripts, stylesheets and icons, and the schema (Swagger UI's `url:`,
# ReDoc's `spec-url`).
LOADED = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""")
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "png": "image/png", "json": None}
DOCS_PATHS = ["/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"]


def loaded_urls(page: str) -> set[str]:
    return {swagger or other for other, swagger in LOADED.findall(page)}


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            "/docs",
            {
                "/openapi.json",
                "/docs/assets/swagger-ui-bundle.js",
                "/docs/assets/swagger-ui.css",
                "/docs/assets/favicon.png",
            },
        ),
        (
            "/redoc",
            {"/openapi.json", "/docs/assets/redoc.standalone.js", "/docs/assets/favicon.png"},
        ),
    ],
)
async def test_the_docs_pages_load_only_files_the_app_serves(
    client: AsyncClient, page: str, expected: set[str]
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # No CDN, no web fonts: nothing on the page names another host.
    assert "://" not in response.text
    assert loaded_urls(response.text) == expected
    for url in expected:
        served = await client.get(url)
        assert served.status_code == 200, url
        media_type = MEDIA_TYPES[url.rsplit(".", 1)[-1]] or "application/json"
        assert served.headers["content-type"].startswith(media_type), url
        assert len(served.content) > 1000, url


async def test_the_scripts_keep_their_licence_notices(client: AsyncClient) -> None:
    for name in ("swagger-ui-bundle.js", "redoc.standalone.js"):
        script = await client.get(f"/docs/assets/{name}")
        assert script.text.startswith("/*! For license information"), name


async def test_the_schema_documents_the_api_and_not_the_docs(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "/api/items" in schema["paths"]
    assert not any(path.startswith(("/docs", "/redoc", "/openapi")) for path in schema["paths"])


@pytest.mark.parametrize(
    "name", ["index.html", "core.py", "%2E%2E%2Fcore.py", "swagger-ui-bundle.js.map"]
)
async def test_only_the_named_assets_are_served(client: AsyncClient, name: str) -> None:
    response = await client.get(f"/docs/assets/{name}")

    assert response.status_code == 404
    assert response.json()["detail"] == "Not Found"


async def test_api_docs_false_turns_the_pages_and_the_schema_off(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    async with running(make_app(make_settings(api_docs=False))) as client:
        responses = {path: await client.get(path) for path in DOCS_PATHS}
        still_serving = await client.get("/health/live")

    for path, response in responses.items():
        assert response.status_code == 404, path
        # The same answer as a path that never existed.
        assert response.json()["detail"] == "Not Found", path
    assert still_serving.status_code == 200
