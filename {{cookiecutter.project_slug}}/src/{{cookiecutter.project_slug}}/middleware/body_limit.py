"""Request bodies bounded by MAX_REQUEST_BODY_BYTES at the ASGI edge, before anything reads them.

A Content-Length over the limit is answered 413 at once; the application never runs. A body that
announces no length (chunked) is counted as the server hands it over: the chunk that crosses the
limit gets the 413 sent there and then, and the application is told the client has gone, so it
stops reading. Either way no more than the limit (plus one chunk) is ever held in memory.

It sits inside RequestContextMiddleware, so the 413 carries the request id like every error.
"""

from typing import Any

from fastapi import FastAPI, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import ErrorResponse, error_response

TOO_LARGE_DETAIL = "The request body is larger than {limit} bytes"
TOO_LARGE_DESCRIPTION = "The request body is larger than MAX_REQUEST_BODY_BYTES"


def too_large(limit: int) -> JSONResponse:
    # The client may still be sending the rest of the body: close the connection instead of
    # reading and discarding it.
    return error_response(
        status.HTTP_413_CONTENT_TOO_LARGE,
        TOO_LARGE_DETAIL.format(limit=limit),
        {"Connection": "close"},
    )


class RequestBodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The settings the lifespan resolved (a test's override included).
        limit: int = scope["app"].state.settings.max_request_body_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await too_large(limit)(scope, receive, send)
            return

        received = 0
        response_started = False
        refused = False

        async def receive_within_limit() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not response_started:
                        refused = True
                        await too_large(limit)(scope, receive, send)
                    # Too late for a 413 once a response has started: end the request instead.
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 has been sent: whatever the application answers goes nowhere
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_refused)
        except ClientDisconnect:
            if not refused:
                raise


def document_request_body_limit(app: FastAPI) -> None:
    """List the 413 in the OpenAPI schema of every operation that takes a request body."""
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate_openapi()  # FastAPI builds it once and then returns the same dict
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(ErrorResponse.__name__, ErrorResponse.model_json_schema())
        too_large_response = {
            "description": TOO_LARGE_DESCRIPTION,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}
                }
            },
        }
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation["responses"].setdefault(
                        str(status.HTTP_413_CONTENT_TOO_LARGE), too_large_response
                    )
        return schema

    # FastAPI's documented way to extend the schema it generates.
    app.openapi = openapi  # type: ignore[method-assign]
