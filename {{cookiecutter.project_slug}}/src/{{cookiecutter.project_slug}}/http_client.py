"""The service's one outgoing HTTP client, opened by the lifespan and shared by every request.

A client per request would pay a new TCP (and TLS) handshake each time and leave connection
limits meaningless; this one keeps connections alive and bounds them and every call's time.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, Request

from {{ cookiecutter.project_slug }}.settings import Settings


@asynccontextmanager
async def open_http_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(
        max_connections=settings.http_max_connections,
        max_keepalive_connections=settings.http_max_connections,
    )
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        limits=limits,
        follow_redirects=False,
    ) as client:
        yield client


async def get_http_client(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http_client
    return client


HttpClientDep = Annotated[httpx.AsyncClient, Depends(get_http_client)]
