import pytest
from fastapi import FastAPI
from httpx import AsyncClient

pytestmark = pytest.mark.anyio


async def test_resources_are_created_once_and_shared_by_requests(
    app: FastAPI, client: AsyncClient
) -> None:
    database, cache = app.state.database, app.state.cache

    for _ in range(3):
        assert (await client.get("/health/ready")).status_code == 200

    assert app.state.database is database
    assert app.state.cache is cache


async def test_openapi_documents_the_health_probes(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/health/live", "/health/ready"} <= set(schema["paths"])
    ready = schema["paths"]["/health/ready"]["get"]["responses"]
    assert {"200", "503"} <= set(ready)
