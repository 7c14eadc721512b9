"""Fixtures that run the real application, lifespan included, against real servers."""

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from {{ cookiecutter.project_slug }}.db.migrate import upgrade_to_head
from {{ cookiecutter.project_slug }}.db.models import Base, User
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.users import create_user

from tests.cache.{{ cookiecutter.cache_backend }}_service import (
    cache_settings,
    check_cache_server,
    prepared_cache_server,
    remove_cache_entries,
)
from tests.db.{{ cookiecutter.database }}_database import check_database_server, isolated_database_url

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-to-pass"

SettingsFactory = Callable[..., Settings]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before the first test when a server the suite needs is down.

    One message naming the server and how to start it, instead of a traceback in every test.
    Under pytest-xdist only the controller checks (workers carry `workerinput`), before it
    starts any worker.
    """
    if hasattr(session.config, "workerinput") or session.config.option.collectonly:
        return
    problems = [problem for problem in (check_database_server(), check_cache_server()) if problem]
    if problems:
        raise pytest.UsageError("\n\n".join(problems))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what an app's lifespan did to logging, so no test writes to another's output."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.fixture(scope="session")
async def database_url(anyio_backend: str) -> AsyncIterator[str]:
    """One fresh, migrated database for the whole test session, removed at the end."""
    async with isolated_database_url() as url:
        # Alembic runs its own event loop, so it gets a thread of its own.
        await anyio.to_thread.run_sync(upgrade_to_head, url)
        yield url


async def delete_all_rows(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
async def cache_server(anyio_backend: str) -> AsyncIterator[None]:
    """Whatever the cache server needs for this test run (DynamoDB: a table of its own)."""
    async with prepared_cache_server():
        yield


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
            # The tests share the machine with other work: an event loop may get back to a
            # cache answer later than the production deadline, which would open the breaker.
            "cache_timeout_seconds": 5.0,
            **cache_settings(),
        }
        return Settings(_env_file=None, **(values | overrides))

    yield make
    await remove_cache_entries(prefix)
    await delete_all_rows(database_url)


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


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Run `app`'s lifespan and yield a client that calls it in-process."""
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
async def make_user(
    settings: Settings,
) -> AsyncIterator[Callable[[str], Awaitable[tuple[User, str]]]]:
    """Create a user in the test database; returns the user and its API token.

    Independent of any running app, so tests can start apps of their own.
    """
    engine = create_async_engine(settings.database_url.get_secret_value())
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    async def make(name: str) -> tuple[User, str]:
        async with sessionmaker() as session:
            user, token = await create_user(session, name, settings)
            await session.commit()
        return user, token

    yield make
    await engine.dispose()


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Return once `condition()` holds; fail after `seconds`."""
    with anyio.fail_after(seconds):
        # Polled: conditions here change in other tasks or threads, with no event to wait on.
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MakeUser = Callable[[str], Awaitable[tuple[User, str]]]


@pytest.fixture
async def alice(make_user: MakeUser) -> dict[str, str]:
    """Authorization headers of a user named alice."""
    _, token = await make_user("alice")
    return bearer(token)


@pytest.fixture
async def bob(make_user: MakeUser) -> dict[str, str]:
    _, token = await make_user("bob")
    return bearer(token)
