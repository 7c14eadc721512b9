"""The last word on failures: an exception nothing else handled becomes the JSON 500.

It is logged here, with its traceback and the request id (RequestContextMiddleware, further out,
has set it), and answered with the error shape of every other error: no traceback or setting
reaches the client. Starlette's ServerErrorMiddleware would answer it too, but only after every
middleware has finished, as a bare text 500 with no request id and no CORS headers. Here, inside
CORSFromSettingsMiddleware, the 500 gets the CORS headers of the request it answers, so a page
can read its request id like that of any other error.
"""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import internal_error_response

logger = logging.getLogger(__name__)


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracked(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started:
                raise  # too late for an error response: let the server drop the connection
            await internal_error_response()(scope, receive, send)
