"""The one server interceptor. For every call, inside the task that serves it:

- a request id (from `x-request-id` metadata or new), kept in a contextvar for error details and
  logs, and sent back as `x-request-id` response metadata so a client can find its call in the logs;
- for the forge services, the caller: its API key checked when authentication is on, and the
  projects the call may touch set as the engine's scope (engine/tenancy.py);
- a cap on the streams one caller holds open at once;
- one access-log line, the call's counts and duration for Prometheus (server/metrics.py) and,
  when tracing is configured, its OpenTelemetry span (server/tracing.py).

Health checks and reflection need no key: load balancers and tools probe them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from dataclasses import dataclass

import grpc

from engine import tenancy
from server import auth, convert
from server.metrics import RpcMetrics
from server.request_context import new_request_id, request_id
from server.tracing import RpcTracer

log = logging.getLogger("forge.server.access")
ANONYMOUS = "anonymous"
REQUEST_ID_HEADER = "x-request-id"
_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def rpc_names(method: str) -> tuple[str, str]:
    """(service, method) of a method path: "/forge.training.v1.TrainerService/GetTrainingJob" gives
    ("forge.training.v1.TrainerService", "GetTrainingJob")."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def status_name(context, error: BaseException | None) -> str:
    """The status code the client gets, by name, once the handler returned or raised `error`."""
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return "CANCELLED"  # the client went away (or its deadline passed) mid-call
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        return "UNKNOWN"  # what grpc answers for an exception no handler mapped (server/errors.py maps them all)
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, int):
        code = _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


@dataclass
class _Call:
    """One call being served, for its access-log line, metrics and span."""

    method: str
    rpc_type: str
    started: float
    span: object = None
    caller: str = ANONYMOUS
    project: str = ""
    holds_stream: bool = False
    error: BaseException | None = None


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
    def __init__(self, authenticator: auth.Authenticator | None = None, max_streams_per_key: int = 0,
                 metrics: RpcMetrics | None = None, tracer: RpcTracer | None = None):
        self.authenticator = authenticator
        self.streams = StreamSlots(max_streams_per_key)
        self.metrics = metrics
        self.tracer = tracer

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

    async def _begin(self, method: str, rpc_type: str, metadata: dict[str, str], context) -> _Call:
        new_request_id(metadata.get(REQUEST_ID_HEADER))
        try:
            await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id()),))
        except Exception:  # the client already left: the call ends as CANCELLED all the same
            pass
        service, name = rpc_names(method)
        if self.metrics is not None:
            self.metrics.start(service, name, rpc_type)
        span = self.tracer.start(service, name, metadata, request_id()) if self.tracer is not None else None
        return _Call(method, rpc_type, time.perf_counter(), span)

    def _end(self, call: _Call, context) -> None:
        if call.holds_stream:
            self.streams.give_back(call.caller)
        code = status_name(context, call.error)
        seconds = time.perf_counter() - call.started
        log.info("%s %s %.1f ms request_id=%s caller=%s", call.method, code, seconds * 1000, request_id(),
                 call.caller, extra={"rpc_method": call.method, "grpc_code": code,
                                     "duration_ms": round(seconds * 1000, 1), "caller": call.caller})
        if self.metrics is not None:
            self.metrics.finish(*rpc_names(call.method), call.rpc_type, code, seconds)
        if call.span is not None:
            self.tracer.finish(call.span, code, call.project)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        method = handler_call_details.method

        async def enter(call: _Call, context, holds_stream: bool) -> None:
            """Admit the call (aborting it when refused) and take a stream slot when it holds one."""
            try:
                call.caller = self._admit(method, metadata)
                if method in auth.METHOD_ROLES:
                    call.project = tenancy.current().default_project
                if holds_stream:
                    self.streams.take(call.caller)
                    call.holds_stream = True
            except auth.AuthError as refused:
                await context.abort(grpc.StatusCode[refused.code], refused.message)

        def unary_response(behavior, rpc_type: str):
            # An upload (client_stream) holds a stream slot for as long as it sends.
            async def handle(request_or_iterator, context):
                call = await self._begin(method, rpc_type, metadata, context)
                try:
                    await enter(call, context, rpc_type == "client_stream")
                    return await behavior(request_or_iterator, context)
                except BaseException as exc:
                    call.error = exc
                    raise
                finally:
                    self._end(call, context)

            return handle

        def stream_response(behavior, rpc_type: str):
            async def handle(request_or_iterator, context):
                call = await self._begin(method, rpc_type, metadata, context)
                try:
                    await enter(call, context, True)
                    result = behavior(request_or_iterator, context)
                    if inspect.isawaitable(result):  # handlers that write with context.write()
                        await result
                    else:
                        async for item in result:
                            yield item
                except BaseException as exc:
                    call.error = exc
                    raise
                finally:
                    self._end(call, context)

            return handle

        kwargs = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=convert.passing_encoded(handler.response_serializer))
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary, "unary"), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream, "server_stream"),
                                                        **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary, "client_stream"),
                                                        **kwargs)
        return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream, "bidi_stream"), **kwargs)
