"""The outermost middleware: a request id for every request, and the last word on failures.

The id comes from the caller's `X-Request-ID` when it is safe to log and echo (bounded length,
plain characters), otherwise it is a new UUID. It is kept in a ContextVar for the whole request,
so every log line written while serving it carries the id, and it is echoed on every response.

An exception nothing else handled is logged here, with its traceback and the request id, and
answered with the JSON error shape of every other error: no traceback or setting reaches the
client. Handling it here (rather than in Starlette's ServerErrorMiddleware, which runs after this
middleware has finished) keeps the request id on both the log line and the 500 response.
"""

import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }} import tracing
from {{ cookiecutter.project_slug }}.context import request_id_var
from {{ cookiecutter.project_slug }}.errors import internal_error_response

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for UUIDs and tracing ids; plain enough that logs and headers need no escaping.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def accepted_request_id(incoming: str | None) -> str:
    if incoming is not None and SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        if scope["query_string"] and (span := tracing.current_span()) is not None:
            tracing.hide_query_values(span, scope["query_string"])
        token = request_id_var.set(request_id)
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started:
                raise  # too late for an error response: let the server drop the connection
            await internal_error_response()(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(token)
