"""Exit codes scripts can rely on (docs/cli.md lists them), and the one-line message of each
failure a user can fix."""

from __future__ import annotations

import grpc

from forge.training.cli.output import state as state_name
from forge.training.client import FINAL_STATES
from forge.training.v1 import common_pb2

OK = 0
#: A job, pipeline execution or tuning job ended FAILED or CANCELLED, or a dataset failed validation.
ENDED_BADLY = 1
#: A bad command line, spec file or argument; a missing optional dependency.
USAGE = 2
NOT_FOUND = 3
#: No or a wrong API key, or a role that does not allow the call.
DENIED = 4
#: The server cannot be reached, or did not answer in time.
UNAVAILABLE = 5
#: The resource is not in a state that allows the call (resuming a completed job), or already exists.
CONFLICT = 6
#: Any other error the server reported.
SERVER_ERROR = 7
INTERRUPTED = 130

_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: USAGE,
    grpc.StatusCode.OUT_OF_RANGE: USAGE,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: DENIED,
    grpc.StatusCode.PERMISSION_DENIED: DENIED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION: CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.ABORTED: CONFLICT,
}


def for_status(code: grpc.StatusCode) -> int:
    """The exit code of a call that failed with this gRPC status."""
    return _BY_STATUS.get(code, SERVER_ERROR)


class CommandError(Exception):
    """A failure the user can fix, said in one line; main() prints it and exits with `code`."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.code = code


def for_outcome(what: str, name: str, state: int, reason: str = "") -> int:
    """0 when a job, execution or tuning job COMPLETED; otherwise CommandError naming how it ended
    (exit 1 for FAILED or CANCELLED)."""
    if state == common_pb2.JobState.JOB_STATE_COMPLETED:
        return OK
    if state not in FINAL_STATES:  # a stream that ended before a final state: the connection's fault
        raise CommandError(f"{what} {name} is still {state_name(state)}", UNAVAILABLE)
    raise CommandError(f"{what} {name} ended {state_name(state)}" + (f": {reason}" if reason else ""), ENDED_BADLY)
