"""What the current request is, for code far from it: log formatting, error bodies, webhooks."""

from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this task is serving, or None outside a request."""
    return request_id_var.get()


async def get_request_id() -> str:
    """The request id as a dependency: resolved once per request, shared by every dependant."""
    return current_request_id() or "-"


RequestIdDep = Annotated[str, Depends(get_request_id)]
