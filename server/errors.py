"""The one place engine errors become gRPC statuses.

Every servicer method is wrapped by `rpc`: an engine ForgeError becomes its status
code with google.rpc details (BadRequest field violations for INVALID_ARGUMENT, the
request id in RequestInfo), and anything unexpected becomes INTERNAL with the request
id, logged with its traceback. A client mistake is never answered with UNKNOWN.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.errors import ForgeError
from server.request_context import request_id

log = logging.getLogger("forge.server")

_CODES = {
    "INVALID_ARGUMENT": code_pb2.INVALID_ARGUMENT,
    "NOT_FOUND": code_pb2.NOT_FOUND,
    "ALREADY_EXISTS": code_pb2.ALREADY_EXISTS,
    "FAILED_PRECONDITION": code_pb2.FAILED_PRECONDITION,
    "RESOURCE_EXHAUSTED": code_pb2.RESOURCE_EXHAUSTED,
    "PERMISSION_DENIED": code_pb2.PERMISSION_DENIED,
    "UNIMPLEMENTED": code_pb2.UNIMPLEMENTED,
    "DATA_LOSS": code_pb2.DATA_LOSS,
    "DEADLINE_EXCEEDED": code_pb2.DEADLINE_EXCEEDED,
    "ABORTED": code_pb2.ABORTED,
    "UNAVAILABLE": code_pb2.UNAVAILABLE,
    "INTERNAL": code_pb2.INTERNAL,
}


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_of(error: ForgeError) -> status_pb2.Status:
    status = status_pb2.Status(code=_CODES.get(error.code, code_pb2.INTERNAL), message=error.message)
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description, reason=v.reason)
                for v in error.violations
            ]
        )
        status.details.append(_pack(bad))
    status.details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id())))
    return status


def error_status_proto(code: str, message: str) -> status_pb2.Status:
    """google.rpc.Status for a job's recorded failure."""
    return status_pb2.Status(code=_CODES.get(code, code_pb2.INTERNAL), message=message)


def _internal(exc: BaseException, method: str) -> status_pb2.Status:
    rid = request_id()
    log.error("internal error in %s (request %s)", method, rid, exc_info=exc)
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (request id {rid}); the server log has the details",
        details=[_pack(error_details_pb2.RequestInfo(request_id=rid))],
    )


async def _abort(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    await context.abort_with_status(rpc_status.to_status(status))


def rpc(method: Callable) -> Callable:
    """Wrap a servicer method (unary or server-streaming) with the error mapping."""
    name = method.__qualname__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            try:
                async for item in method(self, request, context):
                    yield item
            except ForgeError as exc:
                await _abort(context, status_of(exc))
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:
                await _abort(context, _internal(exc, name))

        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except ForgeError as exc:
            await _abort(context, status_of(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, _internal(exc, name))

    return unary_wrapper
