"""Sentry: the SDK's real envelopes, sent to a local receiver at the DSN's address."""

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import sentry_sdk
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import get_settings

from tests.conftest import MakeUser, SettingsFactory, bearer, running
from tests.upstream import ReceivedRequest, Upstream, running_upstream


class DeliberateError(Exception):
    pass


async def fail(token: str) -> None:
    raise DeliberateError(f"failed while holding {token}")


def events(received: list[ReceivedRequest]) -> list[dict[str, Any]]:
    """The event items of every envelope received (a header line, then item header + payload)."""
    found = []
    for request in received:
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


@pytest.fixture
async def sentry() -> AsyncIterator[Upstream]:
    async with running_upstream() as receiver:
        receiver.status_code = 200
        yield receiver
        # Off again for the tests that follow in this process.
        sentry_sdk.get_client().close()
        sentry_sdk.init()


async def test_an_unhandled_error_is_one_event_with_the_request_id_and_no_token(
    sentry: Upstream, make_settings: SettingsFactory, make_user: MakeUser
) -> None:
    host = sentry.url.removeprefix("http://")
    settings = make_settings(sentry_dsn=f"http://public@{host}/1", environment="production")
    _, token = await make_user("alice")
    app: FastAPI = create_app()
    app.dependency_overrides[get_settings] = lambda: settings

    async def failing_route() -> None:
        await fail(token)

    app.add_api_route("/fail", failing_route)
    async with running(app) as client:
        # Made here, not written in this file: events carry source lines of the stack's frames.
        cookie = f"session={uuid.uuid4().hex}"
        failed = await client.get("/fail", headers=bearer(token) | {"Cookie": cookie})
        missing = await client.get("/api/items/999999", headers=bearer(token))
        await anyio.to_thread.run_sync(sentry_sdk.flush)
    assert failed.status_code == 500
    assert missing.status_code == 404
    (event,) = events(sentry.received)
    assert event["tags"]["request_id"] == failed.json()["request_id"]
    assert event["environment"] == "production"
    assert event["exception"]["values"][-1]["type"] == "DeliberateError"
    sent = json.dumps(event)
    for secret in (token, token.partition(".")[2], cookie):
        assert secret not in sent
    assert "authorization" not in sent.lower()
