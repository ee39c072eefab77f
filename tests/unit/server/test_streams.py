"""server/streams.py: followers of one job share reads, a follower that leaves does not cancel a
read the others wait for, and a burst of records reaches a follower in few batches."""

from __future__ import annotations

import asyncio
import threading
import time

from engine.jobs import states
from engine.monitor.bus import Bus
from server import streams

JOB = "projects/default/trainingJobs/followed"


class History:
    """A job's sequenced records and state, as the journal and trainer would give them; counts reads."""

    def __init__(self, bus: Bus):
        self.bus = bus
        self.items: list[int] = []
        self.state = states.RUNNING
        self.reads = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def record(self, count: int = 1, state: str | None = None) -> None:
        with self._lock:
            self.items.extend(range(len(self.items) + 1, len(self.items) + 1 + count))
            self.state = state or self.state
        self.bus.publish(JOB)

    def fetch(self, after: int, limit: int) -> tuple[list[int], int]:
        self.gate.wait(10)
        with self._lock:
            self.reads += 1
            items = self.items[after:after + limit]
        return items, items[-1] if items else after

    def state_of(self, job: str) -> str:
        return self.state


class Engine:
    def __init__(self):
        self.bus = Bus()


async def _follow(engine: Engine, history: History, received: list[list[int]], share_key="metrics") -> None:
    async for items, _state in streams.follow_job(engine, JOB, 0, True, history.fetch, history.state_of,
                                                  share_key=share_key):
        received.append(items)


async def _until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_followers_at_one_sequence_share_each_read():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(3)
        received = [[] for _ in range(50)]
        tasks = [asyncio.create_task(_follow(engine, history, r)) for r in received]
        for round_ in range(1, 4):
            await _until(lambda: all(sum(map(len, r)) == len(history.items) for r in received))
            history.record(2, state=states.COMPLETED if round_ == 3 else None)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        return history.reads, received

    reads, received = asyncio.run(scenario())
    for batches in received:
        assert [item for batch in batches for item in batch] == list(range(1, 10))  # each once, in order
    # Four rounds (the history, then three records) for 50 followers: read together, not 200 times.
    assert reads <= 8, reads


def test_a_follower_that_leaves_does_not_cancel_the_read_of_the_others():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        history.record(2)
        history.gate.clear()  # the first read blocks until released
        leaving, staying = [], []
        leaver = asyncio.create_task(_follow(engine, history, leaving))
        stayer = asyncio.create_task(_follow(engine, history, staying))
        await asyncio.sleep(0.2)
        leaver.cancel()
        history.gate.set()
        await _until(lambda: staying or stayer.done())
        assert not stayer.done(), "the staying follower ended with the leaving one"
        history.record(1, state=states.COMPLETED)
        await asyncio.wait_for(stayer, 20)
        return leaver.cancelled(), staying, history.reads

    cancelled, staying, reads = asyncio.run(scenario())
    assert cancelled
    assert [item for batch in staying for item in batch] == [1, 2, 3]
    assert reads <= 3, reads


def test_a_burst_of_records_arrives_in_few_batches():
    async def scenario():
        engine = Engine()
        history = History(engine.bus)
        received: list[list[int]] = []
        follower = asyncio.create_task(_follow(engine, history, received, share_key=None))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        for _ in range(20):  # a record every 5 ms, as a fast job's metric points and log lines come
            history.record(1)
            await asyncio.sleep(0.005)
        burst = time.monotonic() - started
        history.record(0, state=states.COMPLETED)
        await asyncio.wait_for(follower, 20)
        return received, burst

    received, burst = asyncio.run(scenario())
    batches = [batch for batch in received if batch]
    assert [item for batch in batches for item in batch] == list(range(1, 21))
    # One read per MIN_READ_INTERVAL_SECONDS at most (plus the first and the last), not one per record.
    assert len(batches) <= burst / streams.MIN_READ_INTERVAL_SECONDS + 2, (len(batches), burst)
    assert len(batches) < 20
