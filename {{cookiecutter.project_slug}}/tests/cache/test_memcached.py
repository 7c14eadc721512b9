import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory

pytestmark = pytest.mark.anyio


async def test_the_backend_stores_and_returns_bytes(app: FastAPI, settings: Settings) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:round-trip"

    await store.set(key, b"\x00cached bytes", 30)

    assert await store.get_many([key]) == [b"\x00cached bytes"]


def test_the_memcached_url_must_name_a_memcached_server(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="MEMCACHED_URL"):
        make_settings(memcached_url="redis://127.0.0.1:6379")
