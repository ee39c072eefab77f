"""server/logs.py: the text and JSON log lines, and the request id of the call being served."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging

import pytest

from server import logs
from server.request_context import new_request_id


@pytest.fixture
def output():
    """Configure logging into a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_the_request_id_only_inside_a_call(output):
    logs.configure("INFO", "json", output)
    log = logging.getLogger("forge.test")
    log.info("at startup")

    def in_call() -> None:
        new_request_id("abc123")
        log.info("serving %s", "GetTrainingJob", extra={"grpc_code": "OK", "duration_ms": 1.5})

    contextvars.copy_context().run(in_call)

    async def handed_to_a_thread() -> None:  # as servicers hand engine work to asyncio.to_thread
        new_request_id("def456")
        await asyncio.to_thread(log.warning, "from the engine")

    asyncio.run(handed_to_a_thread())
    startup, serving, engine = _lines(output)
    assert set(startup) == {"time", "level", "logger", "message"} and startup["message"] == "at startup"
    assert serving["message"] == "serving GetTrainingJob" and serving["request_id"] == "abc123"
    assert serving["grpc_code"] == "OK" and serving["duration_ms"] == 1.5 and serving["logger"] == "forge.test"
    assert engine["request_id"] == "def456" and engine["level"] == "WARNING"
    assert startup["time"].endswith("+00:00")


def test_json_lines_hold_tracebacks_and_warnings(output):
    logs.configure("INFO", "json", output)
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("forge.test").exception("it failed")
    import warnings

    warnings.warn("old option", DeprecationWarning, stacklevel=1)
    failed, warned = _lines(output)  # multi-line text stays inside one JSON line
    assert failed["level"] == "ERROR" and "ValueError: bad\nvalue" in failed["exception"]
    assert warned["logger"] == "py.warnings" and "old option" in warned["message"]


def test_text_lines_stay_as_they_were(output):
    logs.configure("DEBUG", "text", output)
    logging.getLogger("forge.test").debug("hello")
    assert output.getvalue().rstrip().endswith(" DEBUG forge.test: hello")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="text, json"):
        logs.configure("INFO", "xml")
