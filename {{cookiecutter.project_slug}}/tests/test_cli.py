"""The command line: `python -m <package> migrate | create-user NAME`."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import anyio.from_thread
import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.__main__ import main
from {{ cookiecutter.project_slug }}.settings import get_settings

from tests.cache.{{ cookiecutter.cache_backend }}_service import cache_settings
from tests.conftest import TEST_SECRET_KEY
from tests.db.{{ cookiecutter.database }}_database import isolated_database_url


def configure_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test run's cache server, through the environment as the CLI reads it."""
    for name, value in cache_settings().items():
        monkeypatch.setenv(name.upper(), str(value))


@pytest.fixture
def fresh_database_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database with no tables yet, configured through the environment as in production.

    Synchronous on purpose: the CLI starts event loops of its own.
    """
    configure_cache(monkeypatch)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(isolated_database_url()) as url,
    ):
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
        get_settings.cache_clear()
        yield url
    get_settings.cache_clear()


def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    *args: str,
) -> tuple[int, str]:
    """Run the command line in-process against `database_url`: its exit code and all it printed."""
    configure_cache(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    try:
        code = main(list(args))
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def table_names(database_url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
                return set(names)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_python_dash_m_creates_a_user_and_prints_the_token_last(fresh_database_url: str) -> None:
    assert main(["migrate"]) == 0

    created = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "create-user", "erin"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert len(token) >= 32
    assert " " not in token


def test_migrate_builds_the_schema_and_is_idempotent(
    fresh_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert {"users", "items", "alembic_version"} <= table_names(fresh_database_url)

    assert main(["migrate"]) == 0  # already at head: a no-op
    assert "latest migration" in capsys.readouterr().out


def test_a_duplicate_user_name_is_refused(
    fresh_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert main(["create-user", "erin"]) == 0
    capsys.readouterr()

    assert main(["create-user", "erin"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_create_user_grants_the_scopes_asked_for(
    fresh_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0

    assert main(["create-user", "reader", "--scope", "items:read"]) == 0
    assert "scopes: items:read)" in capsys.readouterr().out
    assert main(["create-user", "everything"]) == 0
    assert "scopes: every scope)" in capsys.readouterr().out


def test_an_unknown_scope_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["create-user", "x", "--scope", "admin"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'admin'" in capsys.readouterr().err


def test_create_user_before_migrate_says_the_database_is_not_migrated(
    fresh_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-user", "frank"]) == 1

    error = capsys.readouterr().err
    assert "is not migrated" in error
    assert "run `python -m {{ cookiecutter.project_slug }} migrate` first" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_bad_user_name_is_a_usage_error(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["create-user", name])
    assert exit_info.value.code == 2
    assert "must be 1 to 100 characters" in capsys.readouterr().err


def test_bad_configuration_is_reported_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()
    assert "DATABASE_URL must start with" in capsys.readouterr().err
