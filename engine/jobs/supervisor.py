"""Worker processes: where they come from, and one thread per running worker that relays its
messages to the trainer.

Every job runs in a process of its own, used for that job only. Starting Python and importing
pandas, scikit-learn and the ONNX converters costs seconds of CPU, so the trainer keeps warm
workers (WarmPool): idle processes forked from a warm template, a process that imported all
that once and does nothing but fork. A fork starts in milliseconds with everything imported
and shares the template's memory until it writes to it. The template never runs a job, so a
warm worker starts as clean as a freshly spawned one; when no warm worker is free (or warm
workers are off), a job gets a freshly spawned process as before.

The supervisor drains everything the worker has sent before handing it over, so a
burst of log lines or metric points is persisted as one batch (one transaction, one
wake-up of watchers) instead of one by one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

_SPAWN = multiprocessing.get_context("spawn")
# The standard library's fork server is the warm template: one per server process, started
# by the first warm worker asked for.
_FORK = multiprocessing.get_context("forkserver")
log = logging.getLogger("forge.engine.supervisor")

# How often the supervisor measures a worker's memory: each sample walks the worker's
# process tree in /proc (about a millisecond), so a chatty worker is not measured per message.
MEMORY_SAMPLE_SECONDS = 0.1

# How long a job waits for the template to fork a warm worker when none is idle, before it
# starts in a freshly spawned process instead (the template may be starting, or restarting).
WARM_WAIT_SECONDS = 1.0


def main_script() -> str | None:
    """The program's main script when it was run by path (a file, or "<stdin>"), which every
    spawned worker imports again, as `__mp_main__`; None for a module run with -m or python -c."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return None
    return getattr(main, "__file__", None)


def _template_preload() -> list[str]:
    """What the template imports: engine.jobs.warm_template, and the server's main script when
    it was run by path (e.g. the forge-training command): a process forked from the template
    runs that script first, as a spawned one does, unless the template already has. A main
    module run with -m is never run again, and must not be (server/__main__.py serves)."""
    return ["engine.jobs.warm_template", *(["__main__"] if main_script() else [])]


class WarmWorker:
    """An idle process forked from the warm template, waiting on its pipe for one job."""

    def __init__(self, niceness: int):
        from engine.jobs import worker

        parent, child = _FORK.Pipe(duplex=True)
        self.conn = parent
        self.process = _FORK.Process(target=worker.wait_for_job, args=(child, niceness), name="forge-worker:idle",
                                     daemon=True)
        self.process.start()  # returns once the template has forked it
        child.close()

    def hand_over(self, payload: dict[str, Any]) -> bool:
        """Give it its job, with the server's environment and working directory as they are now
        (those of a freshly spawned worker); False when it is gone."""
        try:
            self.conn.send({"payload": payload, "environ": dict(os.environ), "cwd": os.getcwd()})
            return True
        except OSError:  # it died idle
            self.stop()
            return False

    def stop(self) -> None:
        """Idle, it holds nothing: closing its pipe tells it to exit, and SIGKILL makes sure
        without waiting for a process that may get little CPU (its template reaps it)."""
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()


class WarmPool:
    """`size` idle warm workers, each handed exactly one job and then replaced by a new fork.

    A thread keeps the pool full. The first fork waits for the template to import everything
    (seconds); jobs dispatched meanwhile start in freshly spawned processes."""

    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"warm_workers must be 0 (none) or more, got {size}")
        self.size = size
        self._idle: list[WarmWorker] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Whether the template answers: set by each fork that succeeded, cleared by one that
        # failed and by an idle worker found dead (its template may be gone).
        self._ready = False

    def start(self) -> None:
        """Start filling the pool (once; a pool of size 0 never starts anything)."""
        with self._changed:
            if self.size == 0 or self._thread is not None or self._stopped:
                return
            _FORK.set_forkserver_preload(_template_preload())
            self._thread = threading.Thread(target=self._fill, name="warm-workers", daemon=True)
            self._thread.start()

    def idle(self) -> list[WarmWorker]:
        with self._changed:
            return list(self._idle)

    def take(self) -> WarmWorker | None:
        """An idle warm worker (replaced at once), or None: then the job spawns a fresh process."""
        deadline = time.monotonic() + WARM_WAIT_SECONDS
        with self._changed:
            while not self._stopped and self._thread is not None:
                while self._idle:
                    worker = self._idle.pop(0)
                    self._changed.notify_all()
                    if worker.process.is_alive():
                        return worker
                    worker.stop()  # died idle (killed, or its template is gone)
                    self._ready = False
                left = deadline - time.monotonic()
                if not self._ready or left <= 0:
                    return None
                self._changed.wait(left)
        return None

    def stop(self) -> None:
        """Stop the idle workers and stop forking; jobs already handed over are not affected."""
        with self._changed:
            self._stopped = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for worker in idle:
            worker.stop()

    def _fill(self) -> None:
        # The workers' niceness is the server's plus the worker's own, as a spawned worker's is.
        from engine.jobs.worker import WORKER_NICENESS

        niceness = os.nice(0) + WORKER_NICENESS
        failures = 0
        while True:
            with self._changed:
                while not self._stopped and len(self._idle) >= self.size:
                    self._changed.wait()
                if self._stopped:
                    return
            try:
                worker = WarmWorker(niceness)
            except Exception:  # the template could not start or fork: jobs spawn fresh processes meanwhile
                failures += 1
                log.warning("could not fork a warm worker; retrying", exc_info=failures == 1)
                with self._changed:
                    self._ready = False
                    self._changed.wait(min(60.0, 2.0 ** failures))
                continue
            failures = 0
            with self._changed:
                if not self._stopped:
                    self._idle.append(worker)
                    self._ready = True
                    self._changed.notify_all()
                    continue
            worker.stop()  # the pool stopped while the template forked it
            return


class Supervised:
    """What supervise() and the trainer keep about any running worker, wherever it runs."""

    # Whether the worker's processes are on this machine (tree() lists them).
    local = True

    def supervised(self, timeout_seconds: float, memory_limit: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.started = time.monotonic()
        # The terminal message (kind, payload); its state change is applied once the worker is gone.
        self.outcome: tuple[str, Any] | None = None
        # Why supervision itself failed (e.g. the database refused a write), if it did.
        self.failure = ""
        self.timed_out = False
        self.kill_reason = ""
        # Bytes of resident memory the worker and its children may use together; 0: no limit.
        self.memory_limit = memory_limit
        self.peak_memory = 0
        # The last epoch whose metrics were recorded before this worker started (a crash replay).
        self.recorded_epoch = 0


class WorkerHandle(Supervised):
    """A running worker process and the pipe to it: a warm worker from `pool` when one is idle,
    else a freshly spawned process."""

    def __init__(self, job: str, payload: dict[str, Any], timeout_seconds: float = 0.0, memory_limit: int = 0,
                 pool: WarmPool | None = None):
        from engine.jobs import worker

        self.job = job
        warm = pool.take() if pool is not None else None
        # Whether the process was forked from the warm template (and so is not this process's child).
        self.warm = warm is not None and warm.hand_over(payload)
        if self.warm:
            self.conn, self.process = warm.conn, warm.process
            self.process.name = f"forge-worker:{job}"
        else:
            parent, child = _SPAWN.Pipe(duplex=True)
            self.conn = parent
            self.process = _SPAWN.Process(target=worker.main, args=(payload, child), name=f"forge-worker:{job}",
                                          daemon=True)
            self.process.start()
            child.close()
        self.supervised(timeout_seconds, memory_limit)
        self._memory_checked = 0.0
        self._send_lock = threading.Lock()
        try:
            self._identity = psutil.Process(self.process.pid)
        except psutil.Error:  # already gone: alive() says so
            self._identity = None

    def alive(self) -> bool:
        """Whether the worker process runs. A warm worker's exit is reported by its template;
        should the template die first, the process itself is asked."""
        if self.process.is_alive():
            return True
        if not self.warm or self._identity is None:
            return False
        try:  # is_running() compares start times: a reused pid is not this worker
            return self._identity.is_running() and self._identity.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit status, or -N when signal N ended it."""
        return self.process.exitcode

    def join(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.warm and self.alive():  # its template is gone: wait on the process itself
            with contextlib.suppress(psutil.Error):
                self._identity.wait(timeout)

    def command(self, kind: str) -> None:
        with self._send_lock:
            try:
                self.conn.send(kind)
            except (BrokenPipeError, OSError):
                pass  # the worker is already gone; its exit is handled by the supervisor

    def tree(self) -> list[psutil.Process]:
        """The worker and the processes it started (e.g. joblib's), worker first."""
        if self._identity is None:
            return []
        try:
            return [self._identity, *self._identity.children(recursive=True)]
        except psutil.Error:  # already gone
            return []

    def kill(self, reason: str) -> None:
        self.kill_reason = self.kill_reason or reason
        if self.alive():
            # Children first: orphaned, they would keep their CPU and memory after the job ended.
            tree = self.tree()
            for process in [*tree[1:], *tree[:1]]:
                try:
                    process.kill()
                except psutil.Error:
                    pass

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
                        message = handle.conn.recv()
                        if message[0] == "batch":  # an epoch's messages, sent together (worker._Channel.together)
                            batch.extend(message[1])
                        else:
                            batch.append(message)
                except (EOFError, OSError):
                    closed = True  # the worker closed its end: everything it sent has been read
                if batch:
                    on_messages(handle, batch)
                if closed:
                    break
            elif not handle.alive():
                # It may have sent its last messages (its outcome) and exited after the poll above
                # gave up: this thread can wait that long for the GIL, and a warm worker exits at
                # once (os._exit, no interpreter teardown). Whatever it sent is still in the pipe.
                if handle.conn.poll():
                    continue
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
        handle.join(10)
        if handle.alive():
            handle.kill("")
            handle.join(5)
        handle.conn.close()
        on_exit(handle)
