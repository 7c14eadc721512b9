import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.api.deps import SessionDep
from {{ cookiecutter.project_slug }}.db.models import Item
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import MakeUser, SettingsFactory, running
from tests.db.postgresql_database import (
    SERVER_URL,
    check_database_server,
    unreachable_database_url,
)
from tests.test_cli import run_cli

pytestmark = pytest.mark.anyio


async def connections_named(application_name: str) -> int:
    observer = create_async_engine(SERVER_URL)
    try:
        async with observer.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            )
            return int(count or 0)
    finally:
        await observer.dispose()


async def test_the_pool_is_sized_from_settings_and_closed_at_shutdown(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory
) -> None:
    application_name = f"test-{uuid.uuid4().hex[:12]}"
    settings = make_settings(database_application_name=application_name, database_pool_size=3)
    app = make_app(settings)
    async with running(app) as client:
        for _ in range(5):
            await client.get("/health/ready")
        pool_size = app.state.database.engine.pool.size()
        while_running = await connections_named(application_name)

    assert pool_size == 3
    # Sequential requests reuse one pooled connection rather than opening one each.
    assert while_running == 1
    assert await connections_named(application_name) == 0


async def test_every_connection_carries_the_database_deadline(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        database_statement_timeout_seconds=1.5, database_pool_timeout_seconds=1
    )
    app = make_app(settings)
    async with running(app), app.state.database.engine.connect() as connection:
        statement_timeout = await connection.scalar(text("SHOW statement_timeout"))
        lock_timeout = await connection.scalar(text("SHOW lock_timeout"))

    assert statement_timeout == lock_timeout == "1500ms"


async def test_a_write_cut_off_by_the_statement_deadline_is_rolled_back(
    make_app: Callable[[Settings], FastAPI],
    make_settings: SettingsFactory,
    make_user: MakeUser,
    database_url: str,
) -> None:
    deadline = 1.0
    router = APIRouter()

    @router.post("/probe/write-then-stall/{owner_id}")
    async def write_then_stall(owner_id: int, session: SessionDep) -> None:
        session.add(Item(owner_id=owner_id, name="half-written"))
        await session.flush()  # the row reached the database inside the transaction
        await session.execute(text("SELECT pg_sleep(30)"))

    user, _ = await make_user("alice")
    app = make_app(
        make_settings(
            database_statement_timeout_seconds=deadline, database_pool_timeout_seconds=deadline
        )
    )
    app.include_router(router)
    async with running(app) as client:
        started = time.monotonic()
        response = await client.post(f"/probe/write-then-stall/{user.id}")
        elapsed = time.monotonic() - started
    observer = create_async_engine(database_url)
    try:
        async with observer.connect() as connection:
            left = await connection.scalar(select(func.count()).select_from(Item))
    finally:
        await observer.dispose()

    assert response.status_code == 503
    assert response.json()["detail"] == "The database is busy; try again shortly"
    assert elapsed < deadline + 2
    assert left == 0


def run_admin_sql(*statements: str) -> None:
    async def run() -> None:
        engine = create_async_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.exec_driver_sql(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def missing_database_url() -> Iterator[URL]:
    """A URL naming a database that does not exist yet on the test server; dropped afterwards."""
    name = f"test_{{ cookiecutter.project_slug }}_missing_{uuid.uuid4().hex[:12]}"
    yield make_url(SERVER_URL).set(database=name)
    run_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def role_without_createdb() -> Iterator[tuple[str, str]]:
    """A login role that may not create databases: its name and password."""
    name, password = f"test_role_{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    run_admin_sql(f"CREATE ROLE \"{name}\" LOGIN NOCREATEDB PASSWORD '{password}'")
    yield name, password
    run_admin_sql(f'DROP ROLE IF EXISTS "{name}"')


def as_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def test_migrate_creates_a_missing_database_then_is_a_no_op(
    missing_database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = as_string(missing_database_url)
    name = missing_database_url.database

    first = run_cli(monkeypatch, capsys, url, "migrate")
    second = run_cli(monkeypatch, capsys, url, "migrate")

    assert first == (
        0,
        f'Created the database "{name}" on {missing_database_url.host}:'
        f"{missing_database_url.port or 5432}.\nThe database is at the latest migration.\n",
    )
    assert second == (0, "The database is at the latest migration.\n")


def test_migrate_without_the_right_to_create_gives_the_createdb_command(
    missing_database_url: URL,
    role_without_createdb: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    role, password = role_without_createdb
    url = missing_database_url.set(username=role, password=password)

    code, output = run_cli(monkeypatch, capsys, as_string(url), "migrate")

    assert code == 1
    assert f'user "{role}" may not create databases' in output
    command = f"createdb -h {url.host} -p {url.port or 5432} -U postgres -O {role} {url.database}"
    assert output.endswith(f"\n    {command}\n")
    assert password not in output


def test_create_user_in_a_missing_database_says_migrate_creates_it(
    missing_database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, output = run_cli(
        monkeypatch, capsys, as_string(missing_database_url), "create-user", "erin"
    )

    assert code == 1
    assert f'the database "{missing_database_url.database}" does not exist' in output
    assert "`python -m {{ cookiecutter.project_slug }} migrate` creates it" in output


def test_an_unknown_role_is_reported_as_an_authentication_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "pw-that-must-not-leak"
    url = make_url(SERVER_URL).set(username=f"nobody_{uuid.uuid4().hex[:8]}", password=password)

    code, output = run_cli(monkeypatch, capsys, as_string(url), "migrate")

    assert code == 1
    assert f'refused user "{url.username}": authentication failed' in output
    assert password not in output
    assert "Traceback" not in output


def test_migrate_against_a_closed_port_says_the_server_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(unreachable_database_url()).set(password="pw-that-must-not-leak")

    code, output = run_cli(monkeypatch, capsys, as_string(url), "migrate")

    assert code == 1
    assert output.startswith(f"error: PostgreSQL at 127.0.0.1:{url.port} is unreachable")
    assert "pw-that-must-not-leak" not in output


def test_the_session_check_passes_while_the_server_answers() -> None:
    assert check_database_server() is None


def test_the_session_check_names_a_closed_port_without_its_password() -> None:
    url = make_url(unreachable_database_url()).set(password="pw-that-must-not-leak")

    message = check_database_server(as_string(url))

    assert message is not None
    assert f"none answers at {url.render_as_string(hide_password=True)}" in message
    assert "TEST_DATABASE_SERVER_URL" in message
    assert "pw-that-must-not-leak" not in message


def test_the_session_check_tells_a_refused_login_from_a_server_that_is_down() -> None:
    url = make_url(SERVER_URL).set(username=f"nobody_{uuid.uuid4().hex[:8]}")

    message = check_database_server(as_string(url))

    assert message is not None
    assert f'refused them (role "{url.username}" does not exist)' in message
