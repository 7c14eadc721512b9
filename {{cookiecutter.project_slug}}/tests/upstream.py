"""A real HTTP server on loopback that records what it receives, standing in for an upstream."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tests.ports import unused_tcp_port


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Upstream:
    url: str
    received: list[ReceivedRequest] = field(default_factory=list)
    status_code: int = 204
    body: bytes = b""
    # Seconds to wait before answering, as a slow upstream would.
    delay: float = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        client_port = request.client.port if request.client else 0
        self.received.append(
            ReceivedRequest(
                request.url.path, dict(request.headers), await request.body(), client_port
            )
        )
        await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": self.status_code, "headers": []})
        await send({"type": "http.response.body", "body": self.body})


@asynccontextmanager
async def running_upstream() -> AsyncIterator[Upstream]:
    """Serve an Upstream with uvicorn on a free loopback port until the block ends."""
    port = unused_tcp_port()
    upstream = Upstream(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        upstream, host="127.0.0.1", port=port, lifespan="off", log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            # uvicorn.Server offers a `started` flag, not an event to wait on.
            while not server.started:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield upstream
    finally:
        server.should_exit = True
        await task
