"""Fixtures that run the real application, lifespan included, against real servers."""

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from tests.cache.{{ cookiecutter.cache_backend }}_service import cache_settings, remove_cache_entries
from tests.db.{{ cookiecutter.database }}_database import isolated_database_url

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-to-pass"

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def database_url(anyio_backend: str) -> AsyncIterator[str]:
    """One fresh database for the whole test session, removed at the end."""
    async with isolated_database_url() as url:
        yield url


@pytest.fixture
async def make_settings(database_url: str) -> AsyncIterator[SettingsFactory]:
    """Build test settings; each test gets its own cache prefix, cleaned up afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "secret_key": TEST_SECRET_KEY,
            "database_url": database_url,
            "cache_prefix": prefix,
            **cache_settings(),
        }
        return Settings(_env_file=None, **(values | overrides))

    yield make
    await remove_cache_entries(prefix)


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def make_app() -> Callable[[Settings], FastAPI]:
    """A new application configured with `settings` through the get_settings override."""

    def make(settings: Settings) -> FastAPI:
        app = create_app()
        app.dependency_overrides[get_settings] = lambda: settings
        return app

    return make


@pytest.fixture
async def app(
    make_app: Callable[[Settings], FastAPI], settings: Settings
) -> AsyncIterator[FastAPI]:
    """The application with its real lifespan running for the duration of the test."""
    application = make_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client
