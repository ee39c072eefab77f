"""The engine's error family.

Each error carries a code named after the gRPC status it becomes; the server maps
them in one place (server/errors.py). The engine itself never imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. `training_config.epochs`), why, and the fix."""

    field: str
    description: str
    reason: str = "INVALID_VALUE"


class ForgeError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str, *, violations: list[FieldViolation] | tuple[FieldViolation, ...] = ()):
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)

    def __reduce__(self):
        # Keeps the violations when an error crosses a process boundary (engine.jobs.isolated).
        return _rebuild, (type(self), self.message, self.violations)


def _rebuild(cls: type, message: str, violations: tuple) -> "ForgeError":
    return cls(message, violations=violations)


def json_kind(value: Any) -> str:
    """What a JSON value is, in words, for a message that says what was expected instead."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


class InvalidArgument(ForgeError):
    """The request is wrong; the message and violations say which field and how to fix it."""

    code = "INVALID_ARGUMENT"

    @classmethod
    def field(cls, field: str, description: str, reason: str = "INVALID_VALUE") -> "InvalidArgument":
        return cls(f"{field}: {description}", violations=[FieldViolation(field, description, reason)])


class NotFound(ForgeError):
    code = "NOT_FOUND"


class AlreadyExists(ForgeError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(ForgeError):
    """The request is valid but the resource's state does not allow it (e.g. resuming a completed job)."""

    code = "FAILED_PRECONDITION"


class ResourceExhausted(ForgeError):
    code = "RESOURCE_EXHAUSTED"


class PermissionDenied(ForgeError):
    code = "PERMISSION_DENIED"


class Unimplemented(ForgeError):
    code = "UNIMPLEMENTED"


class Unavailable(ForgeError):
    """The service cannot do this now or here (e.g. training is disabled in its configuration)."""

    code = "UNAVAILABLE"


class Aborted(ForgeError):
    """Work stopped on purpose before it finished, e.g. a job failed by its metric_threshold callback."""

    code = "ABORTED"


class DeadlineExceeded(ForgeError):
    code = "DEADLINE_EXCEEDED"


class DataLoss(ForgeError):
    """Stored bytes no longer match the checksum recorded when they were written."""

    code = "DATA_LOSS"


def error_of(code: str, message: str) -> ForgeError:
    """The engine error of gRPC code `code` (a name, e.g. "ABORTED"): a ForgeError (INTERNAL) for
    a code no class here has."""
    for cls in _all_errors(ForgeError):
        if cls.code == code:
            return cls(message)
    return ForgeError(message)


def _all_errors(cls: type) -> list[type]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all_errors(child))]
