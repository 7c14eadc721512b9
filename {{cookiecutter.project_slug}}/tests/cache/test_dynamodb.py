import asyncio
import logging
import time
import uuid

import pytest
from aiobotocore.session import get_session
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.__main__ import main
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.dynamodb import MAX_ITEM_BYTES, client_options
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from tests.cache.dynamodb_service import (
    cache_settings,
    check_cache_server,
    drop_table,
    table_settings,
)
from tests.conftest import TEST_SECRET_KEY
from tests.ports import unused_tcp_port

pytestmark = pytest.mark.anyio


async def test_the_backend_stores_and_returns_bytes(app: FastAPI, settings: Settings) -> None:
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:round-trip"

    await store.set(key, b"\x00cached bytes", 30)

    # BatchGetItem refuses a key asked for twice, and answers in any order.
    found = await store.get_many([key, f"{key}:absent", key])

    assert found == [b"\x00cached bytes", None, b"\x00cached bytes"]


async def test_an_expired_item_dynamodb_has_not_deleted_yet_is_never_served(
    app: FastAPI, settings: Settings
) -> None:
    """DynamoDB deletes expired items in the background, up to days later."""
    store = app.state.cache.store
    key = f"{settings.cache_prefix}:expired"
    await store.client.put_item(
        TableName=settings.dynamodb_table,
        Item={"key": {"S": key}, "value": {"B": b"stale"}, "expires_at": {"N": str(time.time())}},
    )

    assert await store.get_many([key]) == [None]
    assert await store.add(key, b"fresh", 30)
    assert await store.get_many([key]) == [b"fresh"]
    assert not await store.add(key, b"second", 30)


async def test_concurrent_writes_are_all_counted_then_settle(
    app: FastAPI, settings: Settings
) -> None:
    cache: ResponseCache = app.state.cache
    state_key = "{" + settings.cache_prefix + ":shared:counted}:items:state"

    await asyncio.gather(*(cache.begin_write(state_key) for _ in range(20)))
    during = State.parse((await cache.read([state_key]))[0])
    await asyncio.gather(*(cache.end_write(state_key) for _ in range(19)))
    one_left = State.parse((await cache.read([state_key]))[0])
    await cache.end_write(state_key)
    after = State.parse((await cache.read([state_key]))[0])

    assert during is not None
    assert during.pending == 20
    assert one_left is not None
    assert one_left.pending == 1
    assert after is not None
    assert after.current() == after.version


async def test_an_entry_over_the_item_limit_is_left_out_with_one_warning(
    app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache: ResponseCache = app.state.cache
    key = "{" + settings.cache_prefix + ":shared:large}:items:digest"
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            await cache.store_entry(key, 1, b"x" * MAX_ITEM_BYTES, 30)

    assert await cache.read([key]) == [None]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "over DynamoDB's item limit" in warnings[0]
    assert not cache.guard.is_open  # not a cache failure: caching goes on
    await cache.store_entry(key, 1, b"small", 30)
    assert await cache.read([key]) != [None]


async def test_migrate_creates_the_missing_table_with_ttl_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    settings = table_settings(dynamodb_table=f"test-migrate-{uuid.uuid4().hex[:8]}")
    environment = {name.upper(): str(value) for name, value in cache_settings().items()}
    environment |= {
        "DYNAMODB_TABLE": settings.dynamodb_table,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET_KEY,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        first = await asyncio.to_thread(main, ["migrate"])
        first_output = capsys.readouterr().out
        second = await asyncio.to_thread(main, ["migrate"])
        second_output = capsys.readouterr().out
        async with get_session().create_client("dynamodb", **client_options(settings)) as client:
            ttl = await client.describe_time_to_live(TableName=settings.dynamodb_table)
    finally:
        get_settings.cache_clear()
        await drop_table(settings)

    assert (first, second) == (0, 0)
    assert f"Created the cache table {settings.dynamodb_table}." in first_output
    assert "Created the cache table" not in second_output
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }


async def test_migrate_names_an_unreachable_endpoint_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    endpoint = f"http://127.0.0.1:{unused_tcp_port()}"
    for name, value in cache_settings().items():
        monkeypatch.setenv(name.upper(), str(value))
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(main, ["migrate"])
    finally:
        get_settings.cache_clear()

    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("error: could not prepare the cache table ")
    assert endpoint in error
    assert "Traceback" not in error


def test_the_session_check_passes_while_dynamodb_answers() -> None:
    assert check_cache_server() is None


def test_the_session_check_names_a_closed_port() -> None:
    port = unused_tcp_port()

    message = check_cache_server(f"http://127.0.0.1:{port}")

    assert message is not None
    assert f"The tests need DynamoDB Local, and none answers at http://127.0.0.1:{port}" in message
    assert "DYNAMODB_ENDPOINT_URL" in message
