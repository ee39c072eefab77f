"""A request whose bytes do not decode, or that holds a value its well-known type forbids, is the
client's mistake: INVALID_ARGUMENT, not UNKNOWN or INTERNAL.

grpc.aio parses each request before any handler runs, and a parse failure (a corrupt or cut
body, a string field that is not UTF-8, which C++ clients send with only a logged warning, a
client built from an unrelated proto) ends the call as UNKNOWN "Unexpected DecodeError", with the
parser's traceback logged as a server error. This interceptor parses tolerantly instead: a
request that fails arrives as `Rejected`, and the call ends with INVALID_ARGUMENT saying which
message the bytes should have been, with the usual error details (request id). It sits after
CallInterceptor, so the request id is set and authentication comes first.

A request that decodes is also checked for the values protobuf's own well-known types rule out,
which no handler can turn into Python or JSON: a Duration beyond +-10000 years or with nanos out
of range or of the other sign, a Timestamp outside years 1-9999, a Struct number that is NaN or
infinite (JSON has neither). The call ends with INVALID_ARGUMENT naming the field, e.g.
`pipeline.stages[0].timeout`, before any handler meets the value.

Handlers that read with `context.read()` instead of iterating their requests would see the
`Rejected` itself; none of ours do.
"""

from __future__ import annotations

import inspect
import math

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from engine.errors import InvalidArgument
from server.errors import status_of


# The ranges protobuf documents for google.protobuf.Duration and Timestamp.
MAX_DURATION_SECONDS = 315_576_000_000
MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS = -62_135_596_800, 253_402_300_799
_WELL_KNOWN = {"google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.Value"}
_JSON_TYPES = {"google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"}


class Rejected:
    """What a request that did not decode, or holds a forbidden value, is replaced with: why."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument):
        self.error = error


def _well_known_problem(message) -> str:
    kind = message.DESCRIPTOR.full_name
    if kind == "google.protobuf.Duration":
        seconds, nanos = message.seconds, message.nanos
        if abs(seconds) > MAX_DURATION_SECONDS or abs(nanos) > 999_999_999 or seconds * nanos < 0:
            return (f"is not a valid Duration (seconds {seconds}, nanos {nanos}): seconds must be within "
                    f"+-{MAX_DURATION_SECONDS}, nanos within +-999999999 and of the same sign")
    elif kind == "google.protobuf.Timestamp":
        if not MIN_TIMESTAMP_SECONDS <= message.seconds <= MAX_TIMESTAMP_SECONDS or \
                not 0 <= message.nanos <= 999_999_999:
            return (f"is not a valid Timestamp (seconds {message.seconds}, nanos {message.nanos}): it must lie "
                    "between 0001-01-01 and 9999-12-31, with nanos between 0 and 999999999")
    elif message.WhichOneof("kind") == "number_value" and not math.isfinite(message.number_value):
        return f"is {message.number_value}, which JSON (and so a Struct) cannot hold: send a finite number"
    return ""


_holds_well_known: dict[str, bool] = {}


def _may_hold(descriptor, seen: frozenset = frozenset()) -> bool:
    """Whether a message of this type can contain a Duration, Timestamp or Value (cached per type)."""
    name = descriptor.full_name
    if name in _holds_well_known:
        return _holds_well_known[name]
    if name in _WELL_KNOWN:
        return True
    if name in seen:
        return False
    found = any(f.message_type is not None and _may_hold(f.message_type, seen | {name}) for f in descriptor.fields)
    if not seen:  # a verdict reached inside a cycle may be partial: only top-level ones are kept
        _holds_well_known[name] = found
    return found


def first_invalid_value(message, path: str = "") -> InvalidArgument | None:
    """The first Duration, Timestamp or Struct value in `message` that its type forbids, as an
    error naming its field path (`spec.time_budget`, `pipeline.stages[0].timeout`, `input.note`)."""
    if message.DESCRIPTOR.full_name in _WELL_KNOWN:
        problem = _well_known_problem(message)
        if problem:
            return InvalidArgument.field(path, problem)
    if not _may_hold(message.DESCRIPTOR):
        return None
    # Inside a Struct, a path names the keys and indexes only: `input.note`, `values[2]`.
    transparent = message.DESCRIPTOR.full_name in _JSON_TYPES
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        here = path if transparent else f"{path}.{field.name}" if path else field.name
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = ((f".{key}" if transparent else f"[{key!r}]", item) for key, item in value.items())
        elif field.is_repeated:
            items = ((f"[{i}]", item) for i, item in enumerate(value))
        else:
            items = (("", value),)
        for suffix, item in items:
            error = first_invalid_value(item, here + suffix)
            if error is not None:
                return error
    return None


def _tolerant(deserializer):
    def parse(data: bytes):
        try:
            request = deserializer(data)
        except DecodeError as exc:
            return Rejected(InvalidArgument(
                f"the request's bytes do not decode ({exc}): send the method's request message serialized by "
                "protobuf, with strings in UTF-8"))
        error = first_invalid_value(request) if hasattr(request, "ListFields") else None
        return request if error is None else Rejected(error)

    return parse


async def _reject(request: Rejected, context: grpc.aio.ServicerContext) -> None:
    await context.abort_with_status(rpc_status.to_status(status_of(request.error)))


async def _checked(requests, context):
    async for request in requests:
        if isinstance(request, Rejected):
            await _reject(request, context)
        yield request


async def _responses(result):
    if inspect.isawaitable(result):  # handlers that write with context.write()
        await result
        return
    async for item in result:
        yield item


def _one_request(behavior):
    async def call(request, context):
        if isinstance(request, Rejected):
            await _reject(request, context)
        return await behavior(request, context)

    return call


def _one_request_streamed(behavior):
    async def call(request, context):
        if isinstance(request, Rejected):
            await _reject(request, context)
        async for item in _responses(behavior(request, context)):
            yield item

    return call


def _request_stream(behavior):
    async def call(requests, context):
        return await behavior(_checked(requests, context), context)

    return call


def _request_stream_streamed(behavior):
    async def call(requests, context):
        async for item in _responses(behavior(_checked(requests, context), context)):
            yield item

    return call


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        kwargs = dict(request_deserializer=_tolerant(handler.request_deserializer),
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_one_request(handler.unary_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_one_request_streamed(handler.unary_stream), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_request_stream(handler.stream_unary), **kwargs)
        return grpc.stream_stream_rpc_method_handler(_request_stream_streamed(handler.stream_stream), **kwargs)
