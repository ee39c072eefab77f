"""Jobs on a Ray cluster (`forge-training serve --executor ray --ray-address HOST:PORT`).

Each job runs as one Ray task that runs the very code a local worker process runs
(engine/jobs/worker.py run_job): its metrics, logs, checkpoints and outcome reach the trainer
as the same messages, and the trainer's supervisor thread (supervisor.supervise) relays them
the same way. Sequences, retries, pause, resume and cancel therefore work unchanged.

Messages travel through a mailbox: one asyncio actor per server (no CPU of its own) that
holds each job's messages to the server and commands to its worker. A worker's send returns
once the mailbox has the message, as a pipe's does, so a worker that dies has delivered
everything it sent before. The mailbox, like every task the server submitted, belongs to the
server's Ray driver: when the server process dies, Ray stops them, and the restarted server
resumes the jobs from their checkpoints, as it does local ones.

Each task runs in a Ray worker process used for that job only (max_calls=1): a crash or a
framework's global state never reaches the next job. What the task needs is on storage the
whole cluster shares: the datasets, checkpoints and artifacts under the server's data
directory (a shared path) or object storage (docs/ray.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from engine.errors import FailedPrecondition, ForgeError, ResourceExhausted
from engine.jobs.spec import parse_cpu, parse_memory
from engine.jobs.supervisor import Supervised

log = logging.getLogger("forge.engine.ray")

# How long a supervisor waits in the mailbox for a job's messages before looking at its task.
_TAKE_SECONDS = 0.25
# How Ray Train (v2) reports a worker whose process or node died (classes of a private module,
# so known by name): with the RayActorError of a task, what makes a data-parallel job "lost".
_LOST_WORKER = frozenset({"WorkerHealthCheckFailedError", "WorkerHealthCheckTimeoutError"})
# The messages that end a worker's report (worker.py).
_OUTCOMES = frozenset({"completed", "failed", "paused", "cancelled"})


class _Mailbox:
    """Each job's messages to the server and commands to its worker (a Ray actor)."""

    def __init__(self) -> None:
        self._to_server: dict[str, list[Any]] = defaultdict(list)
        self._arrived: dict[str, Any] = {}
        self._to_worker: dict[str, list[str]] = defaultdict(list)
        self._concluded: set[str] = set()  # jobs whose worker sent its outcome

    def _event(self, job: str):
        event = self._arrived.get(job)
        if event is None:
            event = self._arrived[job] = asyncio.Event()
        return event

    async def put(self, job: str, message: Any) -> None:
        self._to_server[job].append(message)
        if message[0] in _OUTCOMES:
            self._concluded.add(job)
        self._event(job).set()

    async def concluded(self, job: str) -> bool:
        return job in self._concluded

    async def take(self, job: str, timeout: float) -> list[Any]:
        """The job's messages, waiting up to `timeout` seconds for the first."""
        event = self._event(job)
        if not self._to_server[job] and timeout > 0:
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        event.clear()
        messages, self._to_server[job] = self._to_server[job], []
        return messages

    async def command(self, job: str, kind: str) -> None:
        self._to_worker[job].append(kind)

    async def commands(self, job: str) -> list[str]:
        commands, self._to_worker[job] = self._to_worker[job], []
        return commands

    async def forget(self, job: str) -> None:
        for table in (self._to_server, self._arrived, self._to_worker):
            table.pop(job, None)
        self._concluded.discard(job)


class _WorkerEnd:
    """The worker's end of its mailbox, with the methods of a pipe (what worker._Channel uses)."""

    def __init__(self, mailbox, job: str):
        self._mailbox = mailbox
        self._job = job
        self._commands: list[str] = []

    def send(self, message: Any) -> None:
        import ray

        try:
            ray.get(self._mailbox.put.remote(self._job, message))
        except ray.exceptions.RayActorError as exc:  # the server (and its mailbox) is gone
            raise ConnectionError(str(exc)) from None

    def poll(self, timeout: float = 0.0) -> bool:
        import ray

        if not self._commands:
            try:
                self._commands = ray.get(self._mailbox.commands.remote(self._job))
            except ray.exceptions.RayActorError as exc:
                raise ConnectionError(str(exc)) from None
        return bool(self._commands)

    def recv(self) -> str:
        if not self.poll():
            raise EOFError("no command")
        return self._commands.pop(0)

    def close(self) -> None:
        pass


def _run_job(payload: dict[str, Any], mailbox, key: str, workers: int = 1,
             per_worker: dict[str, Any] | None = None) -> None:
    """The body of a job's Ray task: the worker itself, or, for a data-parallel job, the driver
    of a Ray Train TorchTrainer or XGBoostTrainer whose `workers` workers each run
    worker.run_rank, each asking for `per_worker` (RayExecutor.options). `key`: this attempt's
    place in the mailbox (a late message of an earlier attempt never reaches it)."""
    from engine.jobs import worker

    if workers <= 1:
        worker.run_job(payload, _WorkerEnd(mailbox, key))
        return
    from ray.exceptions import RayActorError
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError

    from engine.frameworks.registry import get_adapter

    collective = get_adapter(payload["spec"]["framework"]).data_parallel
    if collective == "xgboost":
        from ray.train.xgboost import XGBoostTrainer as Trainer
    else:
        from ray.train.torch import TorchTrainer as Trainer

    resources = {name: amount for name, amount in _ray_resources(per_worker or {}).items() if amount}
    trainer = Trainer(
        _train_rank, train_loop_config={"payload": payload, "mailbox": mailbox, "key": key, "collective": collective},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu="GPU" in resources, resources_per_worker=resources),
        # Ray Train's own files (no checkpoints: the workers write the job's own, as any worker
        # does) beside the job's checkpoints, on the storage the cluster shares.
        run_config=RunConfig(name=f"attempt-{payload.get('attempt', 1)}",
                             storage_path=str(Path(payload["checkpoint_dir"]) / "ray-train"),
                             # Never restarted by Ray Train itself, not even after a preemption: it
                             # would replay epochs from the resume point it was started with. The
                             # job's retry policy resumes it from the recorded checkpoint instead.
                             failure_config=FailureConfig(max_failures=0, max_preemption_failures=0)))
    try:
        trainer.fit()
    except TrainingFailedError as exc:
        import ray

        if ray.get(mailbox.concluded.remote(key)):
            return  # rank 0 reported the outcome (e.g. completed) before the group failed: it stands
        errors = list(_errors_in(exc))
        if any(isinstance(error, RayActorError) or type(error).__name__ in _LOST_WORKER for error in errors):
            # As if the job's one worker had been killed: its retry policy resumes it from the
            # checkpoint. (The other workers then fail too, on the broken connection.)
            raise WorkerLost(f"a data-parallel worker was lost: {str(exc).strip().splitlines()[0]}") from None
        _report_failure(_WorkerEnd(mailbox, key), exc, errors)


def _report_failure(end: _WorkerEnd, exc: BaseException, errors: list[BaseException]) -> None:
    """A data-parallel worker raised: the job fails as a single worker's would, with the
    error's code when it is one of ours (e.g. INVALID_ARGUMENT naming a field)."""
    ours = next((error for error in errors if isinstance(error, ForgeError)), None)
    if ours is not None:
        end.send(("failed", {"code": ours.code, "message": ours.message}))
        return
    failures = getattr(exc, "worker_failures", None) or {0: exc}
    # Every worker's error, each under its rank: the first to fail is often not the one
    # listed first (the others then fail on the broken connection).
    end.send(("log", [("error", f"data-parallel worker {rank}: {str(error).strip()}", 0)
                      for rank, error in sorted(failures.items())]))
    summary = "; ".join(f"worker {rank}: {_headline(error)}" for rank, error in sorted(failures.items()))
    end.send(("failed", {"code": "INTERNAL", "message": f"a data-parallel worker failed ({summary})"}))


def _headline(error: BaseException) -> str:
    """The line of an error's text that says what went wrong (not a stack frame)."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    said = [line for line in lines if line and not line.startswith(("[bt]", "Stack trace", "File ", "Traceback"))]
    return said[-1] if said else type(error).__name__


def _train_rank(config: dict[str, Any]) -> None:
    """One data-parallel worker (a Ray Train worker, in its job's collective)."""
    import ray.train

    from engine.jobs import worker

    payload = config["payload"]
    context = ray.train.get_context()
    rank = context.get_world_rank()
    worker.run_rank(payload, _WorkerEnd(config["mailbox"], config["key"]) if rank == 0 else None, rank,
                    context.get_world_size(), config["collective"])


class WorkerLost(RuntimeError):
    """A data-parallel job lost one of its workers (its process or node died)."""


def _errors_in(exc: BaseException):
    """`exc` and every error it carries: causes, contexts, Ray's wrapped causes and Ray Train's
    failures per worker."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        carried = [current.__cause__, current.__context__, getattr(current, "cause", None),
                   *(getattr(current, "worker_failures", None) or {}).values()]
        pending += [error for error in carried if isinstance(error, BaseException)]


class _ServerEnd:
    """The supervisor's end of a job's mailbox, with the methods of a pipe (what supervise uses):
    closed, like a pipe whose worker exited, once the task has ended and every message is read."""

    def __init__(self, handle: RayWorkerHandle):
        self._handle = handle
        self._buffer: list[Any] = []
        self._closed = False

    def poll(self, timeout: float = 0.0) -> bool:
        if self._buffer or self._closed:
            return True
        import ray

        ended = not self._handle.alive()  # looked at first: a task that ended has put everything
        wait = 0.0 if ended else min(timeout, _TAKE_SECONDS)
        self._buffer = ray.get(self._handle.mailbox.take.remote(self._handle.key, wait))
        if not self._buffer and ended:
            self._closed = True
        return bool(self._buffer) or self._closed

    def recv(self) -> Any:
        if not self._buffer and not self.poll():
            raise EOFError("nothing sent")
        if self._buffer:
            return self._buffer.pop(0)
        raise EOFError("the task ended")

    def close(self) -> None:
        self._handle.mailbox.forget.remote(self._handle.key)


class RayWorkerHandle(Supervised):
    """A job's Ray task, supervised like a local worker process (supervisor.WorkerHandle)."""

    warm = False
    local = False

    def __init__(self, job: str, payload: dict[str, Any], timeout_seconds: float, executor: RayExecutor,
                 options: dict[str, Any]):
        self.job = job
        self.key = f"{job}@{uuid.uuid4().hex}"  # this attempt's messages and commands in the mailbox
        self.mailbox = executor.mailbox
        payload = _absolute_paths(payload)
        workers = int((payload["spec"].get("resources") or {}).get("workers") or 0)
        if workers > 1:
            # The task only drives Ray Train; each of its workers asks for the job's resources.
            self.ref = executor.task.options(num_cpus=0, name=f"forge-training:{job}").remote(
                payload, self.mailbox, self.key, workers, options)
        else:
            self.ref = executor.task.options(**options, name=f"forge-training:{job}").remote(
                payload, self.mailbox, self.key)
        self.conn = _ServerEnd(self)
        # Ray schedules by resources.memory; it does not measure a task's memory per job.
        self.supervised(timeout_seconds, memory_limit=0)
        self._exitcode: int | None = None

    def alive(self) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=0)
        return not ready

    def join(self, timeout: float) -> None:
        import ray

        ray.wait([self.ref], timeout=timeout)

    @property
    def exitcode(self) -> int | None:
        """As a process's: None while it runs, 0 when the task returned, 1 when it raised, and
        -SIGKILL when Ray lost its worker (the process or its node died, or it was cancelled):
        a death the trainer may retry from the checkpoint."""
        if self._exitcode is None and not self.alive():
            import ray

            try:
                ray.get(self.ref)
                self._exitcode = 0
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.TaskCancelledError, ray.exceptions.OutOfMemoryError,
                    ray.exceptions.RayActorError) as exc:
                log.warning("%s: Ray lost the job's worker: %s", self.job, str(exc).splitlines()[0])
                self._exitcode = -signal.SIGKILL
            except ray.exceptions.RayTaskError as exc:
                lost = isinstance(exc.cause, WorkerLost)
                log.warning("%s: %s", self.job, exc.cause if lost else exc)
                self._exitcode = -signal.SIGKILL if lost else 1
            except ray.exceptions.RayError as exc:
                log.warning("%s: the job's Ray task failed: %s", self.job, exc)
                self._exitcode = 1
        return self._exitcode

    def command(self, kind: str) -> None:
        self.mailbox.command.remote(self.key, kind)

    def kill(self, reason: str) -> None:
        import ray

        self.kill_reason = self.kill_reason or reason
        if self.alive():
            ray.cancel(self.ref, force=True)

    def check_memory(self) -> None:
        pass

    def tree(self) -> list:
        return []  # its processes are on another machine


class RayExecutor:
    """Runs each job as a Ray task on the cluster at `address` ("auto": the one this machine
    belongs to). Connects when started; a cluster that cannot be reached stops the server at
    start, saying so, rather than failing each job later."""

    name = "ray"

    def __init__(self, address: str):
        self.address = address
        self.mailbox = None
        self.task = None

    def start(self) -> None:
        if self.task is not None:
            return
        try:
            import ray
        except ImportError:
            raise FailedPrecondition("--executor ray needs the ray package, a dependency of forge-training that is "
                                     "missing here: pip install 'ray[train]==2.60.0'") from None
        where = "the cluster this machine belongs to" if self.address == "auto" else self.address
        unreachable = _unreachable(self.address)
        if unreachable:
            # Checked first: ray.init waits minutes for a cluster that is not there.
            raise FailedPrecondition(f"--executor ray: could not connect to the Ray cluster at {where}: {unreachable}; "
                                     "start one (ray start --head) or give its address with --ray-address")
        # Its own namespace per server: two servers on one cluster never share a mailbox.
        try:
            ray.init(address=self.address, namespace=f"forge-training-{uuid.uuid4().hex[:8]}",
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise FailedPrecondition(
                f"--executor ray: could not connect to the Ray cluster at {where}: {str(exc).splitlines()[0]}; "
                "start one (ray start --head) or give its address with --ray-address") from None
        # On the server's own node: it fails with the server, never with another node.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.mailbox = ray.remote(num_cpus=0, scheduling_strategy=here)(_Mailbox).remote()
        self.task = ray.remote(max_calls=1, max_retries=0)(_run_job)

    def options(self, resources: dict[str, Any]) -> dict[str, Any]:
        """A job's resources (TrainingSpec.resources) as Ray's resource requests."""
        options: dict[str, Any] = {"num_cpus": parse_cpu(resources.get("cpu") or "") or 1.0}
        if resources.get("gpu"):
            options["num_gpus"] = int(resources["gpu"])
        memory = parse_memory(resources.get("memory") or "")
        if memory:
            options["memory"] = memory
        return options

    def check(self, resources: dict[str, Any]) -> None:
        """ResourceExhausted when no node of the cluster, as it is now, has what a job asks for:
        Ray would keep such a task waiting for good (an autoscaling cluster should keep a node
        of its largest size)."""
        import ray

        self.start()
        wanted = _ray_resources(self.options(resources))
        nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        asked = ", ".join(f"{_amount(key, amount)}" for key, amount in wanted.items() if amount)
        if not any(all(node.get(key, 0) >= amount for key, amount in wanted.items() if amount) for node in nodes):
            largest = max(nodes, key=lambda node: node.get("CPU", 0), default={})
            raise ResourceExhausted(
                f"resources: no node of the Ray cluster has {asked} (the largest has "
                f"{', '.join(_amount(key, largest.get(key, 0)) for key in wanted)}); ask for less in resources.cpu, "
                "resources.gpu and resources.memory, or add a larger node")
        workers = int(resources.get("workers") or 0)
        room = sum(min(int(node.get(key, 0) // amount) for key, amount in wanted.items() if amount) for node in nodes)
        if workers > room:
            raise ResourceExhausted(
                f"resources.workers: the Ray cluster has room for {room} workers of {asked} each, not {workers}; "
                "ask for fewer workers or less per worker, or add nodes")

    def launch(self, job: str, payload: dict[str, Any], timeout_seconds: float, memory_limit: int,
               resources: dict[str, Any]) -> RayWorkerHandle:
        # Not checked again here (StartTraining did): a retry after a node died waits for Ray
        # to have room again rather than failing the job.
        self.start()
        return RayWorkerHandle(job, payload, timeout_seconds, self, self.options(resources))

    def stop_starting(self) -> None:
        pass  # running tasks still pause through the mailbox

    def close(self) -> None:
        if self.task is None:
            return
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self.task = self.mailbox = None


def _ray_resources(options: dict[str, Any]) -> dict[str, float]:
    """Task options (RayExecutor.options) under the names of Ray's resources, 0 where not asked:
    how Ray Train's workers ask for them and how ray.nodes() counts them."""
    return {"CPU": options.get("num_cpus", 1.0), "GPU": options.get("num_gpus", 0), "memory": options.get("memory", 0)}


def _amount(resource: str, amount: float) -> str:
    if resource == "memory":
        return f"{amount / (1 << 30):.3g} GiB memory"
    return f"{amount:g} {resource}{'s' if resource == 'CPU' and amount != 1 else ''}"


def _unreachable(address: str, timeout: float = 5.0) -> str:
    """Why a "host:port" cluster address takes no TCP connection ("" when it does, or when the
    address is another form: "auto", "ray://...", which ray.init resolves itself)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return ""
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return f"nothing answers at {address} ({exc.strerror or exc})"
    return ""


def _absolute_paths(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its paths absolute: a Ray worker does not run in the server's working
    directory (and Ray Train moves each of its workers to a directory of its own), so a data dir
    given as a relative path (the default ./forge-data) must not reach it as one."""
    def absolute(path: str) -> str:
        return os.path.abspath(path) if path else path

    payload = dict(payload)
    for key in ("checkpoint_dir", "artifact_dir", "data_dir"):
        if payload.get(key):
            payload[key] = absolute(payload[key])
    payload["datasets"] = {part: {**info, "path": absolute(info["path"])} if info else info
                           for part, info in (payload.get("datasets") or {}).items()}
    if payload.get("resume") and payload["resume"].get("path"):
        payload["resume"] = {**payload["resume"], "path": absolute(payload["resume"]["path"])}
    return payload
