"""Followable, resumable streams over a job's sequenced history.

A stream reads what comes after the client's `from_sequence` in batches, then (with
follow) waits on the bus for the job to move on. The job state is read before each
history read, so a job seen as final before a read that returned nothing really has
nothing more: the stream then sends one last message with that final state, which
tells a client that the end is real and not a dropped connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.app import Engine
from engine.jobs import states

BATCH = 1000
# A safety net only: watchers are woken by the bus as soon as anything is recorded.
WAKE_TIMEOUT_SECONDS = 5.0


async def follow_job(
    engine: Engine,
    job: str,
    from_sequence: int,
    follow: bool,
    fetch: Callable[[int, int], tuple[list[Any], int]],
    state_of: Callable[[str], str] | None = None,
) -> AsyncIterator[tuple[list[Any], str]]:
    """Yield (items, job_state) batches; `fetch(after, limit)` returns (items, last sequence scanned).
    `state_of(job)` reads the state (default: a training job's); tuning jobs pass their own.

    A batch with no items reports a state change (and, last of all, the final state).
    """
    after = max(0, from_sequence)
    sent_state = ""
    state_of = state_of or (lambda name: engine.trainer.get_job(name).state)
    while True:
        version = engine.bus.version(job)
        state = await asyncio.to_thread(state_of, job)
        before = after
        items, scanned = await asyncio.to_thread(fetch, after, BATCH)
        after = max(after, scanned)
        if items or state != sent_state:
            sent_state = state
            yield items, state
        if after - before >= BATCH:  # sequences have no gaps: a full batch means more history waits
            continue
        if not follow or state in states.FINAL:
            return
        await engine.bus.wait(job, version, WAKE_TIMEOUT_SECONDS)
