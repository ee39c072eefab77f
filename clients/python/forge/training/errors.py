"""Errors raised by the forge-training SDK.

Every RPC failure reaches the caller as a :class:`ForgeTrainingError`, with the
gRPC status code, the server's message and the field violations the server put
in the ``google.rpc.BadRequest`` detail of its ``google.rpc.Status``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = ["FieldViolation", "ForgeTrainingError", "from_rpc_error", "STATUS_DETAILS_KEY"]

#: Trailing metadata key that carries a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class FieldViolation(NamedTuple):
    """One entry of a ``google.rpc.BadRequest``: which field, what is wrong, and why."""

    field: str
    description: str
    reason: str = ""


def _as_status_code(code: Any) -> grpc.StatusCode:
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    if isinstance(code, str):
        try:
            return grpc.StatusCode[code.upper()]
        except KeyError:
            return grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.UNKNOWN


class ForgeTrainingError(Exception):
    """A failed call to the forge-training service.

    Attributes:
        code: the ``grpc.StatusCode``.
        message: the server's (or the SDK's) message.
        field_violations: ``FieldViolation(field, description, reason)`` tuples
            from the status's ``google.rpc.BadRequest`` detail; empty when none.
        error_info: the ``google.rpc.ErrorInfo`` detail, or None.
        status: the whole ``google.rpc.Status``, or None when the server sent none.
    """

    def __init__(
        self,
        code: grpc.StatusCode | int | str,
        message: str = "",
        field_violations: list[tuple[str, str, str]] | None = None,
        *,
        status: status_pb2.Status | None = None,
        error_info: error_details_pb2.ErrorInfo | None = None,
    ) -> None:
        self.code: grpc.StatusCode = _as_status_code(code)
        self.message: str = message or ""
        self.field_violations: list[FieldViolation] = [
            FieldViolation(*v) for v in (field_violations or [])
        ]
        self.status = status
        self.error_info = error_info
        super().__init__(str(self))

    @property
    def reason(self) -> str:
        """The ErrorInfo reason, e.g. "JOB_NOT_PAUSABLE"; empty when none."""
        return self.error_info.reason if self.error_info is not None else ""

    def __str__(self) -> str:
        if self.field_violations:
            text = "; ".join(
                f"{v.field}: {v.description}" if v.field else v.description
                for v in self.field_violations
            )
        else:
            text = self.message or "(no message)"
        return f"{self.code.name}: " + " ".join(text.split())

    def __repr__(self) -> str:
        return (
            f"ForgeTrainingError(code={self.code.name}, message={self.message!r}, "
            f"field_violations={self.field_violations!r})"
        )

    def __reduce__(self):
        return (
            _rebuild,
            (self.code.name, self.message, [tuple(v) for v in self.field_violations]),
        )


def _rebuild(code: str, message: str, violations: list) -> ForgeTrainingError:
    return ForgeTrainingError(code, message, violations)


def _status_from_metadata(metadata: Any) -> status_pb2.Status | None:
    for item in metadata or ():
        key, value = item[0], item[1]
        if key == STATUS_DETAILS_KEY and isinstance(value, (bytes, bytearray)):
            status = status_pb2.Status()
            try:
                status.ParseFromString(bytes(value))
            except Exception:  # a malformed detail must not hide the error itself
                return None
            return status
    return None


def from_rpc_error(err: grpc.RpcError) -> ForgeTrainingError:
    """Converts a ``grpc.RpcError`` (as raised by a stub) to a ForgeTrainingError.

    The code and message come from the call; the field violations and
    ErrorInfo from the ``google.rpc.Status`` in the trailing metadata.
    """
    if isinstance(err, ForgeTrainingError):
        return err
    code_fn = getattr(err, "code", None)
    details_fn = getattr(err, "details", None)
    trailers_fn = getattr(err, "trailing_metadata", None)
    code = code_fn() if callable(code_fn) else None
    message = details_fn() if callable(details_fn) else None
    try:
        trailers = trailers_fn() if callable(trailers_fn) else None
    except Exception:
        trailers = None
    status = _status_from_metadata(trailers)

    violations: list[tuple[str, str, str]] = []
    error_info = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    (v.field, v.description, v.reason) for v in bad_request.field_violations
                )
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) and error_info is None:
                error_info = error_details_pb2.ErrorInfo()
                detail.Unpack(error_info)
        if code is None:
            code = status.code
        if not message:
            message = status.message
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    if message is None:
        message = str(err)
    return ForgeTrainingError(
        code, message, violations, status=status, error_info=error_info
    )
