"""The one server interceptor. For every call, inside the task that serves it:

- a request id (from `x-request-id` metadata or new), kept in a contextvar for error details and logs;
- for the forge services, the caller: its API key checked when authentication is on, and the
  projects the call may touch set as the engine's scope (engine/tenancy.py);
- a cap on the streams one caller holds open at once;
- one access-log line.

Health checks and reflection need no key: load balancers and tools probe them.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time

import grpc

from engine import tenancy
from server import auth
from server.request_context import new_request_id, request_id

log = logging.getLogger("forge.server.access")
ANONYMOUS = "anonymous"


def _finish(method: str, started: float, context, caller: str) -> None:
    code = context.code() if hasattr(context, "code") else None
    log.info("%s %s %.1f ms request_id=%s caller=%s", method, getattr(code, "name", code) or "OK",
             (time.perf_counter() - started) * 1000, request_id(), caller)


class StreamSlots:
    """Open streaming calls per caller, capped."""

    def __init__(self, limit: int):
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        with self._lock:
            held = self._open.get(caller, 0)
            if self.limit and held >= self.limit:
                raise auth.AuthError(
                    "RESOURCE_EXHAUSTED", f"{caller} already has {held} streams open, the most one caller may hold "
                                          f"(--max-streams-per-key {self.limit}): close watchers you no longer read")
            self._open[caller] = held + 1

    def give_back(self, caller: str) -> None:
        with self._lock:
            left = self._open.get(caller, 1) - 1
            if left:
                self._open[caller] = left
            else:
                self._open.pop(caller, None)


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: auth.Authenticator | None = None, max_streams_per_key: int = 0):
        self.authenticator = authenticator
        self.streams = StreamSlots(max_streams_per_key)

    def _admit(self, method: str, metadata: dict[str, str]) -> str:
        """Authenticate the call and enter its scope; returns who is calling (for logs and limits)."""
        if method not in auth.METHOD_ROLES:
            return ANONYMOUS
        if self.authenticator is None:
            project = auth.header_project(metadata)
            if project:
                tenancy.enter(tenancy.Scope(default_project=project))
            return ANONYMOUS
        principal, scope = self.authenticator.authenticate(method, metadata)
        tenancy.enter(scope)
        return f"key {principal.key_id}"

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        method = handler_call_details.method

        async def enter(context, holds_stream: bool) -> tuple[str, bool]:
            """Admit the call (aborting it when refused); (caller, whether it took a stream slot)."""
            try:
                caller = self._admit(method, metadata)
                if holds_stream:
                    self.streams.take(caller)
                return caller, holds_stream
            except auth.AuthError as refused:
                await context.abort(grpc.StatusCode[refused.code], refused.message)

        def unary_response(behavior, holds_stream: bool):
            # holds_stream: an upload holds a stream slot for as long as it sends.
            async def call(request_or_iterator, context):
                new_request_id(metadata.get("x-request-id"))
                started = time.perf_counter()
                caller, holding = ANONYMOUS, False
                try:
                    caller, holding = await enter(context, holds_stream)
                    return await behavior(request_or_iterator, context)
                finally:
                    if holding:
                        self.streams.give_back(caller)
                    _finish(method, started, context, caller)

            return call

        def stream_response(behavior):
            async def call(request_or_iterator, context):
                new_request_id(metadata.get("x-request-id"))
                started = time.perf_counter()
                caller, holding = ANONYMOUS, False
                try:
                    caller, holding = await enter(context, True)
                    result = behavior(request_or_iterator, context)
                    if inspect.isawaitable(result):  # handlers that write with context.write()
                        await result
                    else:
                        async for item in result:
                            yield item
                finally:
                    if holding:
                        self.streams.give_back(caller)
                    _finish(method, started, context, caller)

            return call

        kwargs = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary, False), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary, True), **kwargs)
        return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kwargs)
