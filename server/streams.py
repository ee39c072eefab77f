"""Followable, resumable streams over a job's sequenced history.

A stream reads what comes after the client's `from_sequence` in batches, then (with
follow) waits on the bus for the job to move on. The job state is read before each
history read, so a job seen as final before a read that returned nothing really has
nothing more: the stream then sends one last message with that final state, which
tells a client that the end is real and not a dropped connection.

Streams of one job that stand at the same sequence share one read (version, state, then
history, in that order, in one thread): hundreds of watchers of a job then cost one
database read per wake-up, not one each, and leave the thread pool to unary calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from engine.app import Engine
from engine.jobs import states

BATCH = 1000
# A safety net only: watchers are woken by the bus as soon as anything is recorded.
WAKE_TIMEOUT_SECONDS = 5.0
# A follower waits this long after a read before the next: what a job records meanwhile (a
# metric point and a log line per epoch, many epochs a second) arrives as one batch, and a
# server's watchers cost a few reads a second each rather than one per record.
MIN_READ_INTERVAL_SECONDS = 0.25


async def follow_job(
    engine: Engine,
    job: str,
    from_sequence: int,
    follow: bool,
    fetch: Callable[[int, int], tuple[list[Any], int]],
    state_of: Callable[[str], str] | None = None,
    share_key: Hashable | None = None,
) -> AsyncIterator[tuple[list[Any], str]]:
    """Yield (items, job_state) batches; `fetch(after, limit)` returns (items, last sequence scanned).
    `state_of(job)` reads the state (default: a training job's); tuning jobs pass their own.
    `share_key` names what fetch and state_of read (e.g. "metrics"): streams of this job with the
    same key share reads at the same sequence. Callers check access before they call: shared reads
    go by the full job name.

    A batch with no items reports a state change (and, last of all, the final state).
    """
    after = max(0, from_sequence)
    sent_state = ""
    state_of = state_of or (lambda name: engine.trainer.get_job(name).state)
    loop = asyncio.get_running_loop()

    def read(after: int) -> tuple[int, str, tuple[list[Any], int]]:
        version = engine.bus.version(job)
        return version, state_of(job), fetch(after, BATCH)

    read_done = float("-inf")  # a first read may join any: the stream has seen nothing yet
    while True:
        before = after
        key = (loop, engine, job, share_key, after) if share_key is not None else object()
        # Only a read that starts after this stream's previous one ended is news to it.
        version, state, (items, scanned) = await _shared_read(key, read_done, read, after)
        read_done = loop.time()
        after = max(after, scanned)
        if items or state != sent_state:
            sent_state = state
            yield items, state
        if after - before >= BATCH:  # sequences have no gaps: a full batch means more history waits
            continue
        if not follow or state in states.FINAL:
            return
        await asyncio.sleep(read_done + MIN_READ_INTERVAL_SECONDS - loop.time())
        await engine.bus.wait(job, version, WAKE_TIMEOUT_SECONDS)


# Reads in flight, by key: (future, loop time it started). A key holds the event loop, so
# servers in other loops never meet.
_reads: dict[Hashable, tuple[asyncio.Future, float]] = {}


async def _shared_read(key: Hashable, not_before: float, read: Callable[..., Any], *args: Any) -> Any:
    """`read(*args)` in a thread, or the same read another stream started at `not_before` or
    later. A stream that goes away stops waiting without cancelling the read others wait for."""
    loop = asyncio.get_running_loop()
    future, started = _reads.get(key, (None, 0.0))
    if future is None or future.done() or started < not_before:
        future = asyncio.ensure_future(asyncio.to_thread(read, *args))
        _reads[key] = (future, loop.time())
        future.add_done_callback(lambda done: _forget(key, done))
    return await asyncio.shield(future)


def _forget(key: Hashable, done: asyncio.Future) -> None:
    if _reads.get(key, (None,))[0] is done:
        del _reads[key]
    if not done.cancelled():
        done.exception()  # retrieved: a failed read nobody awaits any more is not "never retrieved"
