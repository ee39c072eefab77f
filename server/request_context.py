"""The request id of the RPC being served, kept in a contextvar by the interceptor."""

from __future__ import annotations

import contextvars
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def request_id() -> str:
    return _request_id.get() or "-"


def current_request_id() -> str:
    """The request id of the call being served; "" outside any call (startup, job supervisors)."""
    return _request_id.get()


def new_request_id(incoming: str | None) -> contextvars.Token:
    return _request_id.set(incoming or uuid.uuid4().hex[:16])
