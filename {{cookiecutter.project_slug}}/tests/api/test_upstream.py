"""fastapi-cache2 on a plain function: an upstream call cached once, stampedes included."""

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running
from tests.upstream import running_upstream

pytestmark = pytest.mark.anyio


async def test_concurrent_callers_make_one_upstream_call(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    async with running_upstream() as upstream:
        upstream.status_code, upstream.body, upstream.delay = 200, b'{"status":"green"}', 0.2
        settings = make_settings(upstream_status_url=f"{upstream.url}/status?key=s3cret")
        async with running(make_app(settings)) as client:
            answers = await asyncio.gather(*(client.get("/api/upstream") for _ in range(20)))
            again = await client.get("/api/upstream")

    assert [answer.status_code for answer in answers] == [200] * 20
    assert {answer.content for answer in (*answers, again)} == {b'{"status":"green"}'}
    assert len(upstream.received) == 1


async def test_a_failing_upstream_is_a_502_and_is_not_cached(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    async with running_upstream() as upstream:
        upstream.status_code = 500
        settings = make_settings(upstream_status_url=f"{upstream.url}/status")
        async with running(make_app(settings)) as client:
            failed = await client.get("/api/upstream")
            upstream.status_code, upstream.body = 200, b'{"status":"green"}'
            recovered = await client.get("/api/upstream")

    assert failed.status_code == 502
    assert "127.0.0.1" not in failed.text  # the URL may carry a token
    assert recovered.json() == {"status": "green"}
    assert len(upstream.received) == 2


async def test_without_an_upstream_url_the_route_is_404(client: AsyncClient) -> None:
    assert (await client.get("/api/upstream")).status_code == 404
