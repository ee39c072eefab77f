"""The job state machine. Every state change goes through `check_transition`."""

from __future__ import annotations

from engine.errors import FailedPrecondition

PENDING = "PENDING"
RUNNING = "RUNNING"
PAUSING = "PAUSING"
PAUSED = "PAUSED"
CANCELLING = "CANCELLING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

FINAL = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE = frozenset({RUNNING, PAUSING, CANCELLING})  # a worker process exists

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, PAUSED, CANCELLED, FAILED}),
    RUNNING: frozenset({PAUSING, CANCELLING, PAUSED, COMPLETED, FAILED}),
    # A worker asked to pause may finish or fail first; that outcome wins.
    PAUSING: frozenset({PAUSED, CANCELLING, COMPLETED, FAILED}),
    PAUSED: frozenset({PENDING, CANCELLED}),
    # A worker may complete before it sees the cancel; the truthful outcome wins.
    CANCELLING: frozenset({CANCELLED, COMPLETED, FAILED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

_VERB_HINTS = {
    PAUSING: "only PENDING or RUNNING jobs can be paused",
    PAUSED: "only PENDING or RUNNING jobs can be paused",
    PENDING: "only PAUSED jobs can be resumed",
    CANCELLING: "the job already finished",
    CANCELLED: "the job already finished",
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_transition(job_name: str, current: str, target: str) -> None:
    if not can_transition(current, target):
        hint = _VERB_HINTS.get(target, "")
        raise FailedPrecondition(f"job {job_name} is {current}; cannot move to {target}" + (f": {hint}" if hint else ""))
