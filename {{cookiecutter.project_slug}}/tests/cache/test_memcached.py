import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.cache.guard import StoreRefusedError
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache.memcached_service import check_cache_server
from tests.conftest import SettingsFactory
from tests.ports import unused_tcp_port

pytestmark = pytest.mark.anyio


async def test_the_backend_stores_and_returns_bytes(app: FastAPI, settings: Settings) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:round-trip"

    await store.set(key, b"\x00cached bytes", 30)

    assert await store.get_many([key]) == [b"\x00cached bytes"]


def test_the_memcached_url_must_name_a_memcached_server(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="MEMCACHED_URL"):
        make_settings(memcached_url="redis://127.0.0.1:6379")


def test_the_session_check_passes_while_memcached_answers() -> None:
    assert check_cache_server() is None


def test_the_session_check_names_a_closed_port() -> None:
    port = unused_tcp_port()

    message = check_cache_server(f"memcached://127.0.0.1:{port}")

    assert message is not None
    assert f"The tests need memcached, and none answers at memcached://127.0.0.1:{port}" in message
    assert "MEMCACHED_URL" in message


async def test_an_item_memcached_refuses_is_a_refused_store_not_a_failure(
    app: FastAPI, settings: Settings
) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:too-large"
    # Over memcached's default item size limit (1 MiB): it answers SERVER_ERROR.
    too_large = b"x" * (2 * 1024 * 1024)

    with pytest.raises(StoreRefusedError, match="SERVER_ERROR"):
        await store.set(key, too_large, 30)

    # The server still answers, on the same pool.
    await store.set(key, b"small", 30)
    assert await store.get_many([key]) == [b"small"]
