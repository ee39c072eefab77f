"""Followable, resumable streams over a job's sequenced history.

A stream reads what comes after the client's `from_sequence` from the database in pages,
then (with follow) waits on the bus for the job to move on. The job state is read before
each history read, so a job seen as final before a read that returned nothing really has
nothing more: the stream then sends one last message with that final state, which tells a
client that the end is real and not a dropped connection.

Live records come pushed: the journal hands each committed batch to the bus (a "feed"), and
a stream that is caught up takes the records after its sequence from there, with no
database read, as soon as they are committed. Sequences make the hand-over from the database
to the feed exact: the feed serves a stream only when it holds the very next sequence (else
the stream reads the database, as one that starts or falls behind does), so nothing is
missed or sent twice. Any other change of the job (its state) makes the stream read the
state and the history from the database again, which is also how it learns the job ended.

Streams of one job that stand at the same sequence share one database read (version,
state, then history, in that order, in one thread; the state only when the bus says it may
have changed since the stream read it), and convert each fed record once:
hundreds of watchers of a job cost one read per state change, not one each, and leave
the thread pool to unary calls.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from engine.app import Engine
from engine.jobs import states
from engine.monitor.bus import FEED_LENGTH

BATCH = 1000
# A safety net only: watchers are woken by the bus as soon as anything is recorded. A stream
# that slept this long reads the state and history from the database again.
WAKE_TIMEOUT_SECONDS = 5.0
# A stream without a feed (tuning events) waits this long after a read before the next: what
# a job records meanwhile arrives as one batch, and its watchers cost a few database reads a
# second rather than one per record.
MIN_READ_INTERVAL_SECONDS = 0.25


@dataclass(frozen=True)
class Feed:
    """A journal stream the bus carries live ("metrics", "logs"), and what a stream sends of
    one of its records: `convert(record)`, or None to skip it (a filtered log stream)."""

    name: str
    convert: Callable[[dict[str, Any]], Any | None]


async def follow_job(
    engine: Engine,
    job: str,
    from_sequence: int,
    follow: bool,
    fetch: Callable[[int, int], tuple[list[Any], int]],
    state_of: Callable[[str], str] | None = None,
    share_key: Hashable | None = None,
    feed: Feed | None = None,
) -> AsyncIterator[tuple[list[Any], str]]:
    """Yield (items, job_state) batches; `fetch(after, limit)` returns (items, last sequence scanned).
    `state_of(job)` reads the state (default: a training job's); tuning jobs pass their own.
    `share_key` names what fetch, state_of and feed read (e.g. "metrics"): streams of this job with
    the same key share reads at the same sequence and conversions of fed records. Callers check
    access before they call: shared reads go by the full job name. `feed`: the bus feed whose
    records this stream sends (converted as fetch converts them).

    A batch with no items reports a state change (and, last of all, the final state).
    """
    after = max(0, from_sequence)
    sent_state = ""
    state_of = state_of or (lambda name: engine.trainer.get_job(name).state)
    bus = engine.bus
    loop = asyncio.get_running_loop()
    feed_name = feed.name if feed is not None else None
    converted = _converted_cache((loop, bus, job, share_key)) if feed is not None and share_key is not None else {}

    def read(after: int, known: int | None) -> tuple[int, int, str | None, tuple[list[Any], int]]:
        """(version, state version, state, history): the state only if it may have changed
        since it was read at state version `known` (the pages of a long history need it once)."""
        version, state_version = bus.versions(job, feed_name)
        return version, state_version, state_of(job) if state_version != known else None, fetch(after, BATCH)

    read_done = float("-inf")  # a first read may join any: the stream has seen nothing yet
    state, state_version = "", None  # the state last read, and the bus's state version before that read
    while True:
        before = after
        fed = None
        if feed is not None and state and state not in states.FINAL:
            version, now_state_version = bus.versions(job, feed_name)
            if now_state_version == state_version:  # the state read last still holds
                records = bus.recent(job, feed.name, after)
                if records is not None:
                    fed = [item for item in (_convert(feed, converted, record) for record in records)
                           if item is not None]
                    scanned = records[-1]["sequence"] if records else after
        if fed is not None:
            items = fed
        else:
            key = (loop, engine, job, share_key, after, state_version) if share_key is not None else object()
            # Only a read that starts after this stream's previous one ended is news to it.
            version, state_version, read_state, (items, scanned) = await _shared_read(
                key, read_done, read, after, state_version)
            state = read_state or state
            read_done = loop.time()
        after = max(after, scanned)
        if items or state != sent_state:
            sent_state = state
            yield items, state
        if fed is None and after - before >= BATCH:  # sequences have no gaps: more history waits
            continue
        if not follow or state in states.FINAL:
            return
        if feed is None:
            await asyncio.sleep(read_done + MIN_READ_INTERVAL_SECONDS - loop.time())
        if await bus.wait(job, version, WAKE_TIMEOUT_SECONDS, feed_name) == version:
            state_version = None  # nothing woke it: read the state and the history again


def _convert(feed: Feed, converted: dict[int, tuple[dict, Any]], record: dict[str, Any]) -> Any | None:
    """`feed.convert(record)`, once per record for all the streams that share `converted`."""
    sequence = record["sequence"]
    hit = converted.get(sequence)
    if hit is not None and hit[0] is record:  # the same record: a deleted job's new one has its sequence
        return hit[1]
    item = feed.convert(record)
    converted[sequence] = (record, item)
    if len(converted) > _CONVERTED_PER_KEY:
        del converted[next(iter(converted))]
    return item


# Conversions of fed records, by (loop, bus, job, share key): as many as a feed holds, of the most
# recently followed jobs. A key holds the event loop, so servers in other loops never meet.
_CONVERTED_PER_KEY = FEED_LENGTH
_CONVERTED_KEYS = 64
_converted: OrderedDict[Hashable, dict[int, tuple[dict, Any]]] = OrderedDict()


def _converted_cache(key: Hashable) -> dict[int, tuple[dict, Any]]:
    cache = _converted.get(key)
    if cache is None:
        cache = _converted[key] = {}
        while len(_converted) > _CONVERTED_KEYS:
            _converted.popitem(last=False)
    else:
        _converted.move_to_end(key)
    return cache


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
