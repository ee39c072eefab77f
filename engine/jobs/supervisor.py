"""One thread per running worker process: relays its messages to the trainer.

The supervisor drains everything the worker has sent before handing it over, so a
burst of log lines or metric points is persisted as one batch (one transaction, one
wake-up of watchers) instead of one by one.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

_SPAWN = multiprocessing.get_context("spawn")
log = logging.getLogger("forge.engine.supervisor")

# How often the supervisor measures a worker's memory: each sample walks the worker's
# process tree in /proc (about a millisecond), so a chatty worker is not measured per message.
MEMORY_SAMPLE_SECONDS = 0.1


class WorkerHandle:
    """A running worker process and the pipe to it."""

    def __init__(self, job: str, payload: dict[str, Any], timeout_seconds: float = 0.0, memory_limit: int = 0):
        from engine.jobs import worker

        self.job = job
        parent, child = _SPAWN.Pipe(duplex=True)
        self.conn = parent
        self.process = _SPAWN.Process(target=worker.main, args=(payload, child), name=f"forge-worker:{job}", daemon=True)
        self.timeout_seconds = timeout_seconds
        self.started = time.monotonic()
        # The terminal message (kind, payload); its state change is applied once the process is gone.
        self.outcome: tuple[str, Any] | None = None
        # Why supervision itself failed (e.g. the database refused a write), if it did.
        self.failure = ""
        self.timed_out = False
        self.kill_reason = ""
        # Bytes of resident memory the worker and its children may use together; 0: no limit.
        self.memory_limit = memory_limit
        self.peak_memory = 0
        self._memory_checked = 0.0
        # The last epoch whose metrics were recorded before this worker started (a crash replay).
        self.recorded_epoch = 0
        self._send_lock = threading.Lock()
        self.process.start()
        child.close()

    def command(self, kind: str) -> None:
        with self._send_lock:
            try:
                self.conn.send(kind)
            except (BrokenPipeError, OSError):
                pass  # the worker is already gone; its exit is handled by the supervisor

    def tree(self) -> list[psutil.Process]:
        """The worker and the processes it started (e.g. joblib's), worker first."""
        try:
            worker = psutil.Process(self.process.pid)
            return [worker, *worker.children(recursive=True)]
        except psutil.Error:  # already gone
            return []

    def kill(self, reason: str) -> None:
        self.kill_reason = self.kill_reason or reason
        if self.process.is_alive():
            # Children first: orphaned, they would keep their CPU and memory after the job ended.
            for child in self.tree()[1:]:
                try:
                    child.kill()
                except psutil.Error:
                    pass
            self.process.kill()

    def check_memory(self) -> None:
        """Kill the worker once its tree's resident memory passes the limit. Sampled, so a
        worker can briefly hold more than the limit before it is stopped."""
        now = time.monotonic()
        if not self.memory_limit or now - self._memory_checked < MEMORY_SAMPLE_SECONDS:
            return
        self._memory_checked = now
        used = 0
        for process in self.tree():
            try:
                used += process.memory_info().rss
            except psutil.Error:  # exited between the listing and the reading
                pass
        self.peak_memory = max(self.peak_memory, used)
        if used > self.memory_limit:
            self.kill("memory")


def supervise(
    handle: WorkerHandle,
    on_messages: Callable[[WorkerHandle, list[tuple[str, Any]]], None],
    on_exit: Callable[[WorkerHandle], None],
) -> None:
    """Relay messages until the worker exits; then report its exit. Runs in its own thread."""
    try:
        while True:
            if handle.conn.poll(0.25):
                batch: list[tuple[str, Any]] = []
                closed = False
                try:
                    while handle.conn.poll() and len(batch) < 1000:
                        batch.append(handle.conn.recv())
                except (EOFError, OSError):
                    closed = True  # the worker closed its end: everything it sent has been read
                if batch:
                    on_messages(handle, batch)
                if closed:
                    break
            elif not handle.process.is_alive():
                break
            # Checked on every turn: a chatty worker must not escape its deadline.
            if handle.timeout_seconds and time.monotonic() - handle.started > handle.timeout_seconds:
                handle.timed_out = True
                handle.kill("timeout")
            handle.check_memory()
    except (EOFError, OSError):
        pass
    except Exception as exc:  # recording failed (database down, disk full): stop the worker, say why
        log.exception("supervising %s failed", handle.job)
        handle.failure = f"the server could not record the job's progress: {type(exc).__name__}: {exc}"
        handle.kill("supervisor")
    finally:
        handle.process.join(10)
        if handle.process.is_alive():
            handle.process.kill()
            handle.process.join(5)
        handle.conn.close()
        on_exit(handle)
