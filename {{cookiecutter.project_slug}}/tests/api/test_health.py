from collections.abc import Callable

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running
from tests.db.{{ cookiecutter.database }}_database import unreachable_database_url

pytestmark = pytest.mark.anyio


async def test_live_answers_while_the_process_runs(client: AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_and_cache_answer(client: AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok"},
        "failing": [],
    }
    assert response.headers["cache-control"] == "no-store"


async def test_ready_names_an_unreachable_database(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory
) -> None:
    app = make_app(make_settings(database_url=unreachable_database_url()))
    async with running(app) as client:
        response = await client.get("/health/ready")
        # The process itself is fine: liveness must not follow readiness down.
        live = await client.get("/health/live")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
{%- if cookiecutter.cache_backend == "memory" %}
        # The in-process cache stays off until it holds its lock in the database.
        "checks": {"database": "failing", "cache": "failing"},
        "failing": ["database", "cache"],
{%- else %}
        "checks": {"database": "failing", "cache": "ok"},
        "failing": ["database"],
{%- endif %}
    }
    assert live.status_code == 200
