"""An unreachable database: a clear 503 for the requests that need it, the process stays up."""

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, bearer, running
from tests.db.{{ cookiecutter.database }}_database import unreachable_database_url

pytestmark = pytest.mark.anyio


async def test_requests_that_need_the_database_get_a_clear_503(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(
        database_url=unreachable_database_url(), database_pool_timeout_seconds=2
    )
    token = bearer("a-token-whose-user-must-be-looked-up")
    async with running(make_app(settings)) as client:
        needing = [
            await client.get("/api/items", headers=token),
            await client.post("/api/items", json={"name": "x"}, headers=token),
            await client.get("/api/me", headers=token),
        ]
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")

    for response in needing:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json() == {
            "detail": "The database is unreachable; try again shortly",
            "request_id": response.headers["X-Request-ID"],
        }
    assert live.status_code == 200
    assert ready.status_code == 503
    assert "database" in ready.json()["failing"]
    logged = capsys.readouterr().err
    assert logged.count("database unreachable") == len(needing)
    assert "Traceback" not in logged
    assert "SELECT" not in logged  # no statement or parameters in the log
