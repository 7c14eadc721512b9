"""Webhooks through the shared HTTP client, received by a real server on loopback."""

import hashlib
import hmac
import json
import logging
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running
from tests.ports import unused_tcp_port
from tests.upstream import running_upstream

pytestmark = pytest.mark.anyio

WEBHOOK_SECRET = "webhook-signing-secret"


async def test_each_write_sends_a_signed_event_after_its_response(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    alice: dict[str, str],
) -> None:
    async with running_upstream() as upstream:
        settings = make_settings(
            webhook_url=f"{upstream.url}/hooks?token=t0ken", webhook_secret=WEBHOOK_SECRET
        )
        async with running(make_app(settings)) as client:
            created = await client.post("/api/items", json={"name": "a"}, headers=alice)
            item_id = created.json()["id"]
            replaced = await client.put(f"/api/items/{item_id}", json={"name": "b"}, headers=alice)
            deleted = await client.delete(f"/api/items/{item_id}", headers=alice)
            await client.get("/api/items", headers=alice)  # reads send nothing

    assert [r.status_code for r in (created, replaced, deleted)] == [201, 200, 204]
    events = [json.loads(received.body) for received in upstream.received]
    assert [event["type"] for event in events] == ["item.created", "item.updated", "item.deleted"]
    assert events[0]["data"] == created.json()
    assert events[1]["data"] == replaced.json()
    assert events[2]["data"] == {"id": item_id}
    assert len({event["id"] for event in events}) == 3
    for received, event, response in zip(
        upstream.received, events, (created, replaced, deleted), strict=True
    ):
        assert received.path == "/hooks"
        assert event["request_id"] == response.headers["X-Request-ID"]
        assert received.headers["x-request-id"] == response.headers["X-Request-ID"]
        expected = hmac.new(WEBHOOK_SECRET.encode(), received.body, hashlib.sha256).hexdigest()
        assert received.headers["x-webhook-signature"] == f"sha256={expected}"
    # One client for the app's lifetime: every event reused the same kept-alive connection.
    assert len({received.client_port for received in upstream.received}) == 1


async def test_the_client_is_made_once_by_the_lifespan_and_closed_at_shutdown(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    app = make_app(make_settings(http_timeout_seconds=1.5, http_max_connections=3))
    async with running(app) as client:
        await client.get("/health/live")
        shared: httpx.AsyncClient = app.state.http_client
        assert shared.timeout == httpx.Timeout(1.5)
        await client.get("/health/live")
        assert app.state.http_client is shared

    assert shared.is_closed


async def test_an_unreachable_receiver_costs_a_warning_not_the_write(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    alice: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port()}/hooks?token=t0ken"
    async with running(make_app(make_settings(webhook_url=url))) as client:
        with caplog.at_level(logging.WARNING):
            created = await client.post("/api/items", json={"name": "a"}, headers=alice)

    assert created.status_code == 201
    [warning] = [r for r in caplog.records if r.name.endswith("webhooks")]
    assert "item.created" in warning.getMessage()
    assert "t0ken" not in caplog.text


async def test_no_webhook_url_means_no_event(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    alice: dict[str, str],
) -> None:
    async with running_upstream() as upstream, running(make_app(make_settings())) as client:
        created = await client.post("/api/items", json={"name": "a"}, headers=alice)

    assert created.status_code == 201
    assert upstream.received == []


def test_a_webhook_url_must_be_http(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_URL must be an http"):
        make_settings(webhook_url="ftp://example.test/hooks")
