from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi_cache import FastAPICache
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from tests.conftest import TEST_SECRET_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
def clean_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("clean_settings_cache")
def test_get_settings_reads_the_environment_once_until_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    first = get_settings()
    monkeypatch.setenv("CACHE_TTL_SECONDS", "5")

    assert get_settings() is first
    assert first.cache_ttl_seconds == 30

    get_settings.cache_clear()
    assert get_settings().cache_ttl_seconds == 5


def test_secrets_stay_out_of_repr_and_str(settings: Settings) -> None:
    rendered = repr(settings) + str(settings)
    assert TEST_SECRET_KEY not in rendered
    assert settings.database_url.get_secret_value() not in rendered
    assert settings.secret_key.get_secret_value() == TEST_SECRET_KEY


def test_secret_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(_env_file=None)


def test_short_secret_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY must be at least 32 characters"):
        Settings(_env_file=None, secret_key="too-short")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1/app",
        "mysql+aiomysql://root@127.0.0.1/app",
        "sqlite:///app.db",
        "not a url",
    ],
)
def test_database_url_must_use_the_installed_async_driver(url: str) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, secret_key=TEST_SECRET_KEY, database_url=url)


async def test_the_lifespan_uses_the_get_settings_override(
    app: FastAPI, settings: Settings
) -> None:
    # The app fixture overrides get_settings; the lifespan must have used that override.
    assert FastAPICache.get_prefix() == settings.cache_prefix
    assert FastAPICache.get_expire() == settings.cache_ttl_seconds


def test_a_pool_timeout_beyond_the_database_deadline_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must not exceed DATABASE_STATEMENT_TIMEOUT_SECONDS"):
        Settings(
            _env_file=None,
            secret_key=TEST_SECRET_KEY,
            database_statement_timeout_seconds=2,
            database_pool_timeout_seconds=3,
        )
