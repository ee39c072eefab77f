"""Wake-ups for stream watchers, and the newest records of each job's journal feeds.

The durable history of metrics and logs lives in the metadata database. The bus tells
waiting watchers that a topic (a job) moved on, in one of two ways:

- `publish(key)`: something about the topic changed (its state): watchers read it again;
- `publish(key, feed, items)`: the journal committed these records of one of the job's
  sequenced streams ("metrics", "logs"). The bus keeps the newest FEED_LENGTH of them, so
  a watcher that is caught up takes the new records from memory instead of reading the
  database again: hundreds of watchers of a running job then cost no database read at all.

Publishers are worker supervisor threads and the server's request threads; waiters are
asyncio tasks of the server (any number of them) or plain threads.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

# Records kept per feed: at 20 records a second, several seconds for a watcher that fell behind
# (one that falls further reads the database, as one that starts behind does).
FEED_LENGTH = 128
# Feeds kept at once, the most recently appended to: a bound on memory however many jobs ran.
MAX_FEEDS = 128


@dataclass
class _Topic:
    version: int = 0  # moves on at every publish
    state_version: int = 0  # moves on at every publish without records
    feed_versions: dict[str, int] = field(default_factory=dict)
    # feed (None: any) -> loop -> futures of the tasks waiting on that loop
    async_waiters: dict[str | None, dict[asyncio.AbstractEventLoop, set[asyncio.Future]]] = field(default_factory=dict)

    def seen(self, feed: str | None) -> int:
        """The version a watcher of `feed` compares: it moves on when the state or that feed does."""
        return self.version if feed is None else self.state_version + self.feed_versions.get(feed, 0)


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._topics: dict[str, _Topic] = {}
        # (key, feed) -> the newest records, contiguous by "sequence"; least recently appended first.
        self._feeds: OrderedDict[tuple[str, str], deque[dict[str, Any]]] = OrderedDict()

    def _topic(self, key: str) -> _Topic:
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = _Topic()
        return topic

    def version(self, key: str, feed: str | None = None) -> int:
        """What `wait` compares: moves on at any publish of `key`, or (with `feed`) at one of
        its state or of that feed."""
        with self._lock:
            return self._topic(key).seen(feed)

    def versions(self, key: str, feed: str | None = None) -> tuple[int, int]:
        """(version, state version) of `key`: the state version moves on only at a publish
        without records, so a watcher that saw it unchanged knows the state it read still holds."""
        with self._lock:
            topic = self._topic(key)
            return topic.seen(feed), topic.state_version

    def publish(self, key: str, feed: str | None = None, items: list[dict[str, Any]] | None = None) -> None:
        """Wake everyone waiting on `key` (watchers of other feeds sleep on when `feed` is given).
        `items`: the records just committed to `feed`, in sequence order. Safe from any thread;
        records of one feed must be published in sequence order (the journal holds its lock)."""
        with self._lock:
            topic = self._topic(key)
            topic.version += 1
            if feed is None:
                topic.state_version += 1
                waiting = list(topic.async_waiters.values())
            else:
                topic.feed_versions[feed] = topic.feed_versions.get(feed, 0) + 1
                self._remember(key, feed, items or [])
                waiting = [topic.async_waiters[f] for f in (None, feed) if f in topic.async_waiters]
            wakes = [(loop, list(futures)) for by_loop in waiting for loop, futures in by_loop.items()]
            self._cond.notify_all()
        _wake(wakes)

    def _remember(self, key: str, feed: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        ring = self._feeds.get((key, feed))
        if ring is None or (ring and ring[-1]["sequence"] + 1 != items[0]["sequence"]):
            # New, or not the continuation (a deleted job's id used again): start over.
            ring = self._feeds[(key, feed)] = deque(maxlen=FEED_LENGTH)
        ring.extend(items)
        self._feeds.move_to_end((key, feed))
        while len(self._feeds) > MAX_FEEDS:
            self._feeds.popitem(last=False)

    def recent(self, key: str, feed: str, after: int) -> list[dict[str, Any]] | None:
        """The records of `feed` after sequence `after`, from memory: every one of them, in
        order, or None when memory does not reach back to `after` + 1 (read the database)."""
        with self._lock:
            ring = self._feeds.get((key, feed))
            if not ring:
                return None
            first, last = ring[0]["sequence"], ring[-1]["sequence"]
            if after + 1 < first:
                return None
            if after >= last:
                return []
            return list(itertools.islice(ring, after + 1 - first, None))

    async def wait(self, key: str, seen_version: int, timeout: float, feed: str | None = None) -> int:
        """Wait until `key` moves past `seen_version` (or `timeout` seconds); return the version.
        With `feed`, versions are those of `version(key, feed)`."""
        loop = asyncio.get_running_loop()
        # A bare future and a timer: hundreds of watchers wait on each topic, and asyncio.wait_for
        # would start a task for each of them at every wait.
        woken = loop.create_future()
        with self._lock:
            topic = self._topic(key)
            if topic.seen(feed) != seen_version:
                return topic.seen(feed)
            waiting = topic.async_waiters.setdefault(feed, {}).setdefault(loop, set())
            waiting.add(woken)
        timer = loop.call_later(timeout, _wake_one, woken)
        try:
            await woken
        finally:
            timer.cancel()
            with self._lock:
                waiting.discard(woken)
                if not waiting:
                    by_loop = topic.async_waiters.get(feed, {})
                    if by_loop.get(loop) is waiting:
                        del by_loop[loop]
                    if not by_loop:
                        topic.async_waiters.pop(feed, None)
                version = topic.seen(feed)
        return version

    def wait_blocking(self, key: str, seen_version: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._topic(key).version != seen_version, timeout)
            return self._topic(key).version

    def forget(self, key: str) -> None:
        with self._lock:
            topic = self._topics.pop(key, None)
            for feed in [k for k in self._feeds if k[0] == key]:
                del self._feeds[feed]
        if topic is not None:
            _wake([(loop, list(futures)) for by_loop in topic.async_waiters.values() for loop, futures in by_loop.items()])


def _wake(wakes: list[tuple[asyncio.AbstractEventLoop, list[asyncio.Future]]]) -> None:
    """Wake the waiters, one hop into each event loop however many wait there."""
    for loop, waiters in wakes:
        try:
            loop.call_soon_threadsafe(_wake_all, waiters)
        except RuntimeError:  # the waiter's loop is closed; nothing to wake
            pass


def _wake_all(waiters: list[asyncio.Future]) -> None:
    for waiter in waiters:
        _wake_one(waiter)


def _wake_one(waiter: asyncio.Future) -> None:
    if not waiter.done():  # a waiter that timed out or was cancelled is done already
        waiter.set_result(None)
