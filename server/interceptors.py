"""Server interceptors: a request id per call (from `x-request-id` metadata or new),
kept in a contextvar for error details and logs, and one log line per call."""

from __future__ import annotations

import inspect
import logging
import time

import grpc

from server.request_context import new_request_id, request_id

log = logging.getLogger("forge.server.access")


def _finish(method: str, started: float, context) -> None:
    code = context.code() if hasattr(context, "code") else None
    log.info("%s %s %.1f ms request_id=%s", method, getattr(code, "name", code) or "OK",
             (time.perf_counter() - started) * 1000, request_id())


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        incoming = dict(handler_call_details.invocation_metadata or ()).get("x-request-id")
        method = handler_call_details.method

        def unary_response(behavior):
            async def call(request_or_iterator, context):
                new_request_id(incoming)
                started = time.perf_counter()
                try:
                    return await behavior(request_or_iterator, context)
                finally:
                    _finish(method, started, context)

            return call

        def stream_response(behavior):
            async def call(request_or_iterator, context):
                new_request_id(incoming)
                started = time.perf_counter()
                try:
                    result = behavior(request_or_iterator, context)
                    if inspect.isawaitable(result):  # handlers that write with context.write()
                        await result
                    else:
                        async for item in result:
                            yield item
                finally:
                    _finish(method, started, context)

            return call

        kwargs = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kwargs)
        return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kwargs)
