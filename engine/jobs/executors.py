"""Where jobs' workers run. An executor starts one worker for one job and returns a handle that
the trainer supervises the same way whatever runs it (supervisor.supervise): a pipe-like `conn`
carrying the worker's messages, alive/join/kill/command, and the exit code once it ended.

- LocalExecutor (the default): a process on this machine, warm from the WarmPool when one is idle.
- RayExecutor (`--executor ray --ray-address ...`): a Ray task on a cluster (ray_executor.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.jobs.supervisor import WarmPool, WorkerHandle

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    name: str

    def start(self) -> None:
        """Get ready to run jobs (called by each dispatch; cheap once started)."""

    def check(self, resources: dict[str, Any]) -> None:
        """Raise a ForgeError when a job asking for `resources` (the spec's) could never run here."""

    def launch(self, job: str, payload: dict[str, Any], timeout_seconds: float, memory_limit: int,
               resources: dict[str, Any]) -> Any:
        """Start the job's worker; returns its handle. `resources`: the spec's resources."""

    def stop_starting(self) -> None:
        """The server is shutting down: start nothing more (running workers go on)."""

    def close(self) -> None:
        """Every worker has ended: release what the executor holds."""


class LocalExecutor:
    name = "local"

    def __init__(self, warm_workers: int):
        self.warm_pool = WarmPool(warm_workers)

    def start(self) -> None:
        self.warm_pool.start()

    def check(self, resources: dict[str, Any]) -> None:
        pass  # this machine's limits are enforced while the job runs (memory, timeout)

    def launch(self, job: str, payload: dict[str, Any], timeout_seconds: float, memory_limit: int,
               resources: dict[str, Any]) -> WorkerHandle:
        return WorkerHandle(job, payload, timeout_seconds, memory_limit, self.warm_pool)

    def stop_starting(self) -> None:
        self.warm_pool.stop()

    def close(self) -> None:
        self.warm_pool.stop()


def make_executor(kind: str, warm_workers: int = 0, ray_address: str = "") -> Executor:
    if kind == "local":
        return LocalExecutor(warm_workers)
    if kind == "ray":
        from engine.jobs.ray_executor import RayExecutor

        return RayExecutor(ray_address or "auto")
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
