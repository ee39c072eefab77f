"""A job's metric points or log entries as a blocking Python iterator, for code that uses the
engine in-process (Engine.watch_metrics, Engine.logs).

The order of reads is the server's streams' (server/streams.py): the bus version, then the
job's state, then the history after the last sequence. A job seen final before a read that
found nothing new really has nothing more, so the iterator ends; otherwise it sleeps on the
bus until the journal commits something for the job. The server's streams are asyncio and
share their reads among many watchers of one job; this one is for a single reader thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from engine.jobs import states
from engine.monitor.bus import Bus

BATCH = 1000
# A safety net only: the bus wakes the reader as soon as anything is recorded.
WAKE_SECONDS = 5.0


def follow(bus: Bus, job: str, fetch: Callable[[int, int], tuple[list[dict[str, Any]], int]],
           state_of: Callable[[str], str], after: int = 0, keep_following: bool = True) -> Iterator[dict[str, Any]]:
    """Records after sequence `after`; with `keep_following`, new ones as they are recorded,
    until the job is in a final state and everything it recorded was yielded.
    `fetch(after, limit)` returns (records, last sequence scanned)."""
    while True:
        version = bus.version(job)
        state = state_of(job)
        records, scanned = fetch(after, BATCH)
        yield from records
        more = scanned - after >= BATCH  # sequences have no gaps: a full page means more history
        after = max(after, scanned)
        if more:
            continue
        if not keep_following or state in states.FINAL:
            return
        bus.wait_blocking(job, version, WAKE_SECONDS)
