"""Outgoing webhooks: item changes POSTed to WEBHOOK_URL after the response has been sent.

Routes declare `Depends(Webhook("item.created"))`: a class-based dependency, configured per
route with the event it sends, that hands the route a `notify(data)` function. Delivery runs as
a background task, so it only happens once the write's transaction has committed and the client
has its answer; a failed delivery is logged (with the request id) and not retried. Use a queue
when receivers must never miss an event.
"""

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import BackgroundTasks, Depends
from pydantic import BaseModel, SecretStr

from {{ cookiecutter.project_slug }}.context import RequestIdDep
from {{ cookiecutter.project_slug }}.http_client import HttpClientDep
from {{ cookiecutter.project_slug }}.settings import SettingsDep

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Webhook-Signature"

Notify = Callable[[Mapping[str, Any]], None]


class WebhookEvent(BaseModel):
    id: str
    type: str
    occurred_at: datetime
    request_id: str
    data: dict[str, Any]


async def new_event_id() -> str:
    return str(uuid.uuid4())


# use_cache=False: every injection gets its own id, even twice within one request.
EventIdDep = Annotated[str, Depends(new_event_id, use_cache=False)]


def signature(body: bytes, secret: SecretStr) -> str:
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def deliver(
    client: httpx.AsyncClient, url: SecretStr, secret: SecretStr | None, event: WebhookEvent
) -> None:
    body = event.model_dump_json().encode()
    headers = {"Content-Type": "application/json", "X-Request-ID": event.request_id}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    try:
        response = await client.post(url.get_secret_value(), content=body, headers=headers)
    except httpx.HTTPError as error:
        # The URL is not logged: it may hold a token.
        logger.warning(
            "webhook %s %s not delivered: %s", event.type, event.id, type(error).__name__
        )
        return
    if response.is_error:
        logger.warning("webhook %s %s refused: HTTP %d", event.type, event.id, response.status_code)


class Webhook:
    """A dependency that gives the route a function sending `event_type` events."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    async def __call__(
        self,
        background_tasks: BackgroundTasks,
        client: HttpClientDep,
        settings: SettingsDep,
        event_id: EventIdDep,
        request_id: RequestIdDep,
    ) -> Notify:
        def notify(data: Mapping[str, Any]) -> None:
            if settings.webhook_url is None:
                return
            event = WebhookEvent(
                id=event_id,
                type=self.event_type,
                occurred_at=datetime.now(UTC),
                request_id=request_id,
                data=dict(data),
            )
            background_tasks.add_task(
                deliver, client, settings.webhook_url, settings.webhook_secret, event
            )

        return notify
