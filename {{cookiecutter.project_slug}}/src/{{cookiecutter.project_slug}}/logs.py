"""Logging: JSON lines in production, readable lines elsewhere, each with its request id.

While a span is recorded (tracing.py), JSON lines also carry its `trace_id` and `span_id`, so a
log line leads to its trace and a trace to its log lines.
"""

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from {{ cookiecutter.project_slug }}.context import current_request_id
from {{ cookiecutter.project_slug }}.settings import Settings

# Our handler is found by this name, so configuring again replaces it instead of adding another.
HANDLER_NAME = "{{ cookiecutter.project_slug }}"
TEXT_FORMAT = "%(asctime)s %(levelname)-8s [%(request_id)s] %(name)s: %(message)s"
# uvicorn installs handlers of its own; routed through ours, its lines get the same format.
ACCESS_LOGGER = "uvicorn.access"
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", ACCESS_LOGGER)
# httpx logs every request's full URL at INFO, and a webhook URL may hold a token.
QUIET_LOGGERS = ("httpx", "httpcore")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if (trace_id := getattr(record, "trace_id", None)) is not None:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", "")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def access_log_turned_off(access_logger: logging.Logger) -> bool:
    """Whether `uvicorn --no-access-log` left the access logger without a way out.

    It stays that way: routed through ours, uvicorn would format each request's line again
    (it asks `hasHandlers()` once per connection), only for the line to be dropped or printed
    against the server's option.
    """
    return not access_logger.handlers and not access_logger.propagate


def configure_logging(settings: Settings) -> None:
    """Send every log record to stderr in the environment's format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.name = HANDLER_NAME
    handler.addFilter(RequestIdFilter())
    if settings.environment == "production":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.name == HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        if name == ACCESS_LOGGER and access_log_turned_off(server_logger):
            continue
        server_logger.handlers.clear()
        server_logger.propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
