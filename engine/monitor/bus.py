"""Wake-ups for stream watchers.

The durable history of metrics and logs lives in the metadata database; the bus only
tells waiting watchers that a topic moved on (a new sequence, or a state change) so
they read again. Publishers are worker supervisor threads; waiters are asyncio tasks
of the server (any number of them) or plain threads.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


@dataclass
class _Topic:
    version: int = 0
    async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._topics: dict[str, _Topic] = {}

    def _topic(self, key: str) -> _Topic:
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = _Topic()
        return topic

    def version(self, key: str) -> int:
        with self._lock:
            return self._topic(key).version

    def publish(self, key: str) -> None:
        """Wake everyone waiting on `key`. Safe from any thread."""
        with self._lock:
            topic = self._topic(key)
            topic.version += 1
            waiters = list(topic.async_waiters)
            self._cond.notify_all()
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the waiter's loop is closed; nothing to wake
                pass

    async def wait(self, key: str, seen_version: int, timeout: float) -> int:
        """Wait until `key` moves past `seen_version` (or `timeout` seconds); return the version."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            topic = self._topic(key)
            if topic.version != seen_version:
                return topic.version
            topic.async_waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                topic.async_waiters.discard(entry)
                version = topic.version
        return version

    def wait_blocking(self, key: str, seen_version: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._topic(key).version != seen_version, timeout)
            return self._topic(key).version

    def forget(self, key: str) -> None:
        with self._lock:
            topic = self._topics.pop(key, None)
        if topic is not None:
            for loop, event in topic.async_waiters:
                try:
                    loop.call_soon_threadsafe(event.set)
                except RuntimeError:
                    pass
