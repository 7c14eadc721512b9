"""Error reporting to Sentry, on when SENTRY_DSN is set.

An unhandled exception reaches Sentry once: request_context.py logs it with its traceback, and
Sentry's logging integration turns that ERROR line into the event, while the request id is still
known (it is a tag, and the 500 response carries it). Warnings (a database answering 503, the
cache failing open) stay breadcrumbs, and a 4xx is an answer, not an error.

Nothing that identifies a caller leaves: no user data, no request headers, cookies or query
string, no local variables of the stack frames (a token is a local somewhere), and anything
shaped like one of this service's tokens is cut out of messages (`before_send`).
"""

import logging
import re
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import sentry_sdk
from opentelemetry import trace
from sentry_sdk.integrations.logging import LoggingIntegration

from {{ cookiecutter.project_slug }}.context import current_request_id
from {{ cookiecutter.project_slug }}.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

PACKAGE = __name__.partition(".")[0]
# `<user id>.<43 url-safe characters>` (auth.new_token), and any `Bearer ...` credential.
TOKEN_PATTERN = re.compile(r"\b\d{1,18}\.[A-Za-z0-9_-]{43}\b|(?i:bearer)\s+\S+")
REDACTED = "[redacted]"


def configure_error_reporting(settings: Settings) -> None:
    dsn = settings.sentry_dsn.get_secret_value()
    if not dsn:
        return
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=f"{PACKAGE}@{version(PACKAGE)}",
        # What send_default_pii=False meant, and less: the SDK collects no user, cookie,
        # header, query string, body, SQL parameter or stack-frame variable.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "off"}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        # Errors only: traces are OpenTelemetry's (tracing.py).
        traces_sample_rate=None,
        # The ERROR log line of an unhandled exception is its one event (see above). The
        # framework integrations stay off: their breadcrumbs record URLs and cache keys.
        integrations=[LoggingIntegration(event_level=logging.ERROR)],
        auto_enabling_integrations=False,
        before_send=scrubbed,
    )


def scrubbed(event: "Event", hint: "Hint") -> "Event":
    """Tag the event with the request and trace ids; remove what could identify a caller."""
    tags = event.setdefault("tags", {})
    if (request_id := current_request_id()) is not None:
        tags["request_id"] = request_id
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        tags["trace_id"] = format(span_context.trace_id, "032x")
    if (request := event.get("request")) is not None:
        for field in ("headers", "cookies", "query_string", "data", "env"):
            request.pop(field, None)
    return redact(event)  # type: ignore[no-any-return]


def redact(value: Any) -> Any:
    """`value` with every token-shaped string cut out, through dicts and lists."""
    if isinstance(value, str):
        return TOKEN_PATTERN.sub(REDACTED, value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
