"""The server's log output: the familiar text lines, or one JSON object per line for log
collectors (--log-format json).

Every record logged while a call is served carries that call's request id (the one the client
sent as `x-request-id`, or the one the server made and sent back in the same header), including
records logged from the worker threads the call hands engine work to: asyncio.to_thread copies
the call's context, and the filter reads the id from it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from opentelemetry import trace

from server.request_context import current_request_id

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has; anything else on a record came from `extra=` and is worth a field.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Sets record.request_id: the id of the call being served, "" outside calls."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id (inside a call), trace_id and span_id (while a
    traced call runs), the record's `extra=` fields, and exception (a traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", ""):
            entry["request_id"] = record.request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"], entry["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            # A leading underscore marks a library's own bookkeeping, not an `extra=` field:
            # Ray's record factory stamps every record with _ray_timestamp_ns once it is imported.
            if key not in _STANDARD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure(level: str, log_format: str, stream=None) -> None:
    """Send every logger's records to stderr (or `stream`) in `log_format`, replacing any handler
    the root logger had."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # warnings.warn (e.g. a library's deprecation notice) goes through logging too, so a JSON log
    # holds nothing but JSON lines.
    logging.captureWarnings(True)
