"""server/streams.py with the bus's feeds (engine/monitor/bus.py): records the journal commits reach
caught-up followers from memory, with no database read; a follower that starts or falls behind
reads the database and then takes the feed, without a gap or a repeat; anything else that changes
(the job's state) is read from the database, which is also how a stream learns the job ended."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

from engine.jobs import states
from engine.monitor import bus as bus_module
from engine.monitor.bus import FEED_LENGTH, MAX_FEEDS, Bus
from server import streams

JOB = "projects/default/trainingJobs/fed"


class History:
    """A job's metric history as the journal keeps it: committed rows (read by `fetch`, which
    counts reads) and, after each commit, the same records published to the bus's feed."""

    def __init__(self, bus: Bus):
        self.bus = bus
        self.rows: list[dict] = []
        self.state = states.RUNNING
        self.reads = 0
        self.state_reads = 0
        self.conversions = 0
        self.recorded_at: dict[int, float] = {}
        self._lock = threading.Lock()

    def record(self, count: int = 1, publish: bool = True) -> None:
        with self._lock:
            new = [{"sequence": len(self.rows) + i, "loss": 1.0 / (len(self.rows) + i)} for i in range(1, count + 1)]
            self.rows.extend(new)
            for row in new:
                self.recorded_at[row["sequence"]] = time.monotonic()
            if publish:
                self.bus.publish(JOB, "metrics", new)

    def finish(self, state: str = states.COMPLETED) -> None:
        self.state = state
        self.bus.publish(JOB)  # a state change: no records

    def convert(self, record: dict) -> int:
        with self._lock:
            self.conversions += 1
        return record["sequence"]

    def fetch(self, after: int, limit: int) -> tuple[list[int], int]:
        with self._lock:
            self.reads += 1
            rows = self.rows[after:after + limit]
        return [self.convert(r) for r in rows], rows[-1]["sequence"] if rows else after

    def state_of(self, job: str) -> str:
        with self._lock:
            self.state_reads += 1
        return self.state


class Engine:
    def __init__(self):
        self.bus = Bus()


class Follower:
    """One stream: what it received, and when."""

    def __init__(self, engine: Engine, history: History, from_sequence: int = 0, follow: bool = True):
        self.items: list[int] = []
        self.states: list[str] = []
        self.arrived: dict[int, float] = {}
        self.paused = asyncio.Event()
        self.paused.set()
        feed = streams.Feed("metrics", history.convert)
        self.task = asyncio.create_task(self._run(engine, history, from_sequence, follow, feed))

    async def _run(self, engine, history, from_sequence, follow, feed) -> None:
        async for items, state in streams.follow_job(engine, JOB, from_sequence, follow, history.fetch,
                                                     history.state_of, share_key="metrics", feed=feed):
            now = time.monotonic()
            self.items.extend(items)
            self.arrived.update((item, now) for item in items)
            self.states.append(state)
            await self.paused.wait()


async def _until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_caught_up_followers_get_each_record_from_the_feed_without_a_database_read():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(3)
        followers = [Follower(engine, history) for _ in range(50)]
        await _until(lambda: all(len(f.items) == 3 for f in followers))
        reads, conversions = history.reads, history.conversions
        for count in range(4, 14):
            history.record()
            await _until(lambda: all(len(f.items) == count for f in followers))
        fed = (history.reads - reads, history.conversions - conversions)
        history.finish()
        await asyncio.wait_for(asyncio.gather(*(f.task for f in followers)), 20)
        return followers, history, fed

    followers, history, (reads, conversions) = asyncio.run(scenario())
    for follower in followers:
        assert follower.items == list(range(1, 14))  # each once, in order
        assert follower.states[-1] == states.COMPLETED
    assert reads == 0  # ten live records, fifty followers: no read at all
    assert conversions == 10  # each record converted once for all fifty
    delays = [f.arrived[s] - history.recorded_at[s] for f in followers for s in range(4, 14)]
    # No read interval between a commit and its watchers: they have it as soon as the loop runs them.
    assert statistics.median(delays) < streams.MIN_READ_INTERVAL_SECONDS / 2, statistics.median(delays)


def test_a_follower_that_starts_behind_reads_the_database_then_takes_the_feed_without_gap_or_repeat():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        for _ in range(25):
            history.record(100)  # 2500 records; the feed holds only the newest FEED_LENGTH
        follower = Follower(engine, history)
        late = Follower(engine, history, from_sequence=2450)  # within the feed's reach from the start
        await _until(lambda: len(follower.items) == 2500 and len(late.items) == 50)
        reads = history.reads
        for _ in range(5):
            history.record(2)
        await _until(lambda: len(follower.items) == 2510 and len(late.items) == 60)
        live_reads = history.reads - reads
        history.finish()
        await asyncio.wait_for(asyncio.gather(follower.task, late.task), 20)
        return follower.items, late.items, live_reads

    items, late, live_reads = asyncio.run(scenario())
    assert items == list(range(1, 2511))
    assert late == list(range(2451, 2511))
    assert live_reads == 0


def test_a_follower_that_falls_behind_the_feed_reads_what_it_missed_from_the_database():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(2)
        slow = Follower(engine, history)
        await _until(lambda: len(slow.items) == 2)
        slow.paused.clear()  # a client that stops reading for a while
        history.record()
        await _until(lambda: len(slow.items) == 3)
        for _ in range(FEED_LENGTH + 20):  # more than the feed keeps
            history.record()
        reads = history.reads
        slow.paused.set()
        await _until(lambda: len(slow.items) == FEED_LENGTH + 23)
        caught_up_reads = history.reads - reads
        history.finish()
        await asyncio.wait_for(slow.task, 20)
        return slow.items, caught_up_reads

    items, reads = asyncio.run(scenario())
    assert items == list(range(1, FEED_LENGTH + 24))
    assert reads >= 1  # the gap came from the database


def test_records_committed_before_the_final_state_are_sent_even_if_never_fed():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(2)
        follower = Follower(engine, history)
        await _until(lambda: len(follower.items) == 2)
        history.record(3, publish=False)  # committed; the job ends before they reach the feed
        history.finish(states.FAILED)
        await asyncio.wait_for(follower.task, 20)
        return follower

    follower = asyncio.run(scenario())
    assert follower.items == [1, 2, 3, 4, 5]
    assert follower.states[-1] == states.FAILED


def test_a_stream_without_follow_ends_after_the_history():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(1500)
        follower = Follower(engine, history, from_sequence=10, follow=False)
        await asyncio.wait_for(follower.task, 20)
        return follower.items

    assert asyncio.run(scenario()) == list(range(11, 1501))


def test_the_pages_of_a_long_history_read_the_state_once_unless_it_changes():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(5500)
        follower = Follower(engine, history, follow=False)
        await asyncio.wait_for(follower.task, 20)
        pages, state_reads = history.reads, history.state_reads
        history.finish()
        again = Follower(engine, history, from_sequence=2000, follow=False)
        await asyncio.wait_for(again.task, 20)
        return follower, pages, state_reads, again

    follower, pages, state_reads, again = asyncio.run(scenario())
    assert follower.items == list(range(1, 5501)) and pages == 6
    assert state_reads == 1
    assert again.states == [states.COMPLETED] * len(again.states)  # a new stream reads it anew


def test_a_cancelled_follower_leaves_nothing_waiting_on_the_bus():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record()
        followers = [Follower(engine, history) for _ in range(3)]
        await _until(lambda: all(f.items for f in followers))
        await asyncio.sleep(0.05)  # all of them waiting on the bus
        for follower in followers:
            follower.task.cancel()
        await asyncio.gather(*(f.task for f in followers), return_exceptions=True)
        return engine.bus._topics[JOB].async_waiters

    assert asyncio.run(scenario()) == {}


# ----- the bus's feeds alone


def _records(first: int, count: int) -> list[dict]:
    return [{"sequence": s} for s in range(first, first + count)]


def test_the_feed_serves_only_what_it_holds_from_the_next_sequence_on():
    bus = Bus()
    assert bus.recent(JOB, "metrics", 0) is None  # nothing fed yet: read the database
    bus.publish(JOB, "metrics", _records(1, FEED_LENGTH + 10))
    newest = FEED_LENGTH + 10
    assert bus.recent(JOB, "metrics", 9) is None  # sequence 10 is no longer held
    assert [r["sequence"] for r in bus.recent(JOB, "metrics", 10)] == list(range(11, newest + 1))
    assert bus.recent(JOB, "metrics", newest) == []  # caught up
    assert bus.recent(JOB, "metrics", newest + 5) == []  # ahead of the feed (read it from the database)
    assert bus.recent(JOB, "logs", 0) is None  # feeds are separate
    bus.publish(JOB, "metrics", _records(1, 2))  # a deleted job's id used again: its feed starts over
    assert [r["sequence"] for r in bus.recent(JOB, "metrics", 0)] == [1, 2]


def test_the_bus_keeps_the_feeds_of_the_most_recently_fed_jobs_only():
    bus = Bus()
    for i in range(MAX_FEEDS + 1):
        bus.publish(f"job-{i}", "metrics", _records(1, 1))
    assert bus.recent("job-0", "metrics", 0) is None
    assert bus.recent(f"job-{MAX_FEEDS}", "metrics", 0) == [{"sequence": 1}]
    bus.forget(f"job-{MAX_FEEDS}")
    assert bus.recent(f"job-{MAX_FEEDS}", "metrics", 0) is None


def test_a_watcher_of_one_feed_sleeps_through_the_other_feeds_records_but_not_a_state_change():
    async def scenario():
        bus = Bus()
        seen = bus.version(JOB, "metrics")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, bus.publish, JOB, "logs", _records(1, 1))
        started = loop.time()
        await bus.wait(JOB, seen, 0.3, "metrics")
        slept = loop.time() - started
        loop.call_later(0.05, bus.publish, JOB)
        started = loop.time()
        woken = await bus.wait(JOB, seen, 5, "metrics")
        return slept, loop.time() - started, woken != seen

    slept, waited, moved = asyncio.run(scenario())
    assert slept >= 0.29  # the log record did not wake it: it timed out
    assert waited < 2 and moved


def test_publishing_wakes_every_waiter_of_a_loop_with_one_call_into_it(monkeypatch):
    calls = []
    real = bus_module._wake

    def counting(wakes):
        calls.append(len(wakes))
        real(wakes)

    monkeypatch.setattr(bus_module, "_wake", counting)

    async def scenario():
        bus = Bus()
        seen = bus.version(JOB, "metrics")
        waiters = [asyncio.create_task(bus.wait(JOB, seen, 5, "metrics")) for _ in range(100)]
        await asyncio.sleep(0.05)
        bus.publish(JOB, "metrics", _records(1, 1))
        return await asyncio.wait_for(asyncio.gather(*waiters), 5), seen

    versions, seen = asyncio.run(scenario())
    assert all(v != seen for v in versions)
    assert calls == [1]  # one (loop, waiters) hop for the hundred
