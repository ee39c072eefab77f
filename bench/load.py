"""A bounded load test: concurrent clients issue a realistic mix of RPCs while watchers follow running jobs.

    .venv/bin/python bench/load.py                      # SQLite, 100 clients, 500 watchers, 60 s
    .venv/bin/python bench/load.py --database both      # and PostgreSQL (FORGE_TEST_POSTGRES_URL or --postgres-url)

A real `forge-training serve` runs as a subprocess (its memory and CPU are its own). Setup uploads a
dataset, trains one tiny job to completion (so a model version exists) and starts a few long SGD jobs
that emit a metric point every epoch for the whole run. Then, for --duration seconds:

- --watchers streams follow those jobs with WatchTrainingMetrics(from_sequence=0, follow=true) and check
  that every point's sequence is the one after the last (no gaps, no repeats);
- --clients closed-loop clients issue GetTrainingJob, ListTrainingJobs, ListDatasets, GetDataset,
  StreamTrainingLogs(follow=false), GetModel and ListModels, and every --churn-interval seconds one of
  them starts a tiny job and cancels it.

A same-run baseline follows: an empty-handler grpc.aio server (its own process) answering as many unary
calls from as many clients. Results go to bench/results/load-<backend>.json; the target is zero errors
and zero sequence faults, with the latencies reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (RESULTS, ResourceSampler, breast_cancer_frame, percentile, postgres_database,  # noqa: E402
                      raw_process, serve_process, sgd_spec, start_raw_server)

PROJECT = "projects/default"
# Unary calls that take longer than this count as DEADLINE_EXCEEDED errors.
CALL_TIMEOUT_SECONDS = 30.0
# Relative frequency of each read in the clients' mix.
MIX = {
    "GetTrainingJob": 25,
    "ListTrainingJobs": 10,
    "ListDatasets": 10,
    "GetDataset": 15,
    "StreamTrainingLogs": 10,
    "GetModel": 15,
    "ListModels": 15,
}
# StreamTrainingLogs reads a running job's log from this many entries before its latest epoch (a "tail").
LOG_TAIL = 50
RAW_METHOD = "/bench.Raw/Call"


@dataclass
class Plan:
    clients: int = 100
    watchers: int = 500
    duration: float = 60.0
    jobs: int = 2
    epochs: int = 10_000
    churn_interval: float = 2.0
    baseline: bool = True


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------


@dataclass
class World:
    """The resources the load reads: names the setup created."""
    dataset: str
    finished_job: str
    model: str
    long_jobs: list[str]


def set_up(target: str, scratch: Path, plan: Plan) -> World:
    from forge.training import Client

    csv = scratch / "breast_cancer.csv"
    breast_cancer_frame().to_csv(csv, index=False)
    with Client(target) as client:
        dataset = client.upload_dataset(csv, dataset_id="bc-load", label_column="target")
        # All started at once: their worker processes start in parallel.
        finished = client.start_training(sgd_spec(dataset.name, 3), training_job_id="finished")
        long_jobs = [client.start_training(sgd_spec(dataset.name, plan.epochs), training_job_id=f"long-{i}").name
                     for i in range(plan.jobs)]
        done = client.wait(finished.name, timeout=300)
        if not done.model_version:
            raise RuntimeError(f"the setup job {done.name} ended {done.state_message!r} without a model")
        for name in long_jobs:
            client.wait(name, states=["running"], timeout=300)
        return World(dataset=dataset.name, finished_job=finished.name, model=done.model_version, long_jobs=long_jobs)


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter = field(default_factory=collections.Counter)
    error_samples: dict[str, str] = field(default_factory=dict)

    def error(self, method: str, code: str, detail: str) -> None:
        self.errors[f"{method}:{code}"] += 1
        self.error_samples.setdefault(f"{method}:{code}", detail[:500])

    def rpc_error(self, method: str, exc: grpc.aio.AioRpcError) -> None:
        self.error(method, exc.code().name, f"{exc.details()} ({exc.debug_error_string()})")


@dataclass
class Watcher:
    job: str
    messages: int = 0
    points: int = 0
    last_sequence: int = 0
    gaps: int = 0
    repeats: int = 0
    ended_early: bool = False
    error: str = ""
    first_message_seconds: float | None = None


class Load:
    def __init__(self, target: str, world: World, plan: Plan, seed: int = 0):
        from forge.training.client import training_request

        self.target = target
        self.world = world
        self.plan = plan
        self.tally = Tally()
        self.random = random.Random(seed)
        self.watchers = [Watcher(world.long_jobs[i % len(world.long_jobs)]) for i in range(plan.watchers)]
        self.latest_epoch = {job: 0 for job in world.long_jobs}
        self.churn_jobs: list[str] = []
        self.churn_spec = training_request(sgd_spec(world.dataset, 5))
        self._next_churn = 0.0
        self._running = True
        self._started = 0.0

    async def run(self) -> float:
        """Watchers first (they replay history, then follow), clients after; returns the measured seconds."""
        from forge.training.v1 import data_service_pb2_grpc, trainer_service_pb2_grpc

        def channel() -> grpc.aio.Channel:
            return grpc.aio.insecure_channel(self.target)

        self._started = time.monotonic()
        # One channel (one connection) per client and per watcher, as separate users would have.
        channels = [channel() for _ in range(self.plan.clients + self.plan.watchers)]
        try:
            watch_tasks = [asyncio.create_task(self._watch(trainer_service_pb2_grpc.TrainerServiceStub(ch), w))
                           for ch, w in zip(channels[self.plan.clients:], self.watchers)]
            loop = asyncio.get_running_loop()
            started = loop.time()
            self._next_churn = started + self.plan.churn_interval
            client_tasks = [asyncio.create_task(self._client(trainer_service_pb2_grpc.TrainerServiceStub(ch),
                                                             data_service_pb2_grpc.DataServiceStub(ch)))
                            for ch in channels[:self.plan.clients]]
            await asyncio.sleep(self.plan.duration)
            self._running = False
            # Clients finish the call they are in; the watchers' follow streams are cancelled.
            await asyncio.gather(*client_tasks)
            elapsed = loop.time() - started
            for task in watch_tasks:
                task.cancel()
            await asyncio.gather(*watch_tasks, return_exceptions=True)
            return elapsed
        finally:
            await asyncio.gather(*(ch.close() for ch in channels))

    async def _watch(self, stub, watcher: Watcher) -> None:
        from forge.training.v1 import trainer_service_pb2 as pb

        call = stub.WatchTrainingMetrics(pb.WatchTrainingMetricsRequest(name=watcher.job, from_sequence=0,
                                                                        follow=True))
        try:
            async for message in call:
                if not watcher.messages:
                    watcher.first_message_seconds = time.monotonic() - self._started
                watcher.messages += 1
                for point in message.points:
                    if point.sequence == watcher.last_sequence + 1:
                        pass
                    elif point.sequence <= watcher.last_sequence:
                        watcher.repeats += 1
                    else:
                        watcher.gaps += 1
                    watcher.last_sequence = max(watcher.last_sequence, point.sequence)
                    watcher.points += 1
                if watcher.last_sequence > self.latest_epoch[watcher.job]:
                    self.latest_epoch[watcher.job] = watcher.last_sequence
            watcher.ended_early = self._running
        except asyncio.CancelledError:
            call.cancel()
            raise
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and not self._running:
                return
            watcher.error = f"{exc.code().name} after {time.monotonic() - self._started:.1f} s"
            self.tally.rpc_error("WatchTrainingMetrics", exc)

    async def _client(self, trainer, data) -> None:
        from forge.training.v1 import data_service_pb2 as dpb, trainer_service_pb2 as tpb

        world = self.world
        reads = {
            "GetTrainingJob": lambda: trainer.GetTrainingJob(tpb.GetTrainingJobRequest(
                name=self.random.choice([*world.long_jobs, world.finished_job, *self.churn_jobs[-20:]])),
                timeout=CALL_TIMEOUT_SECONDS),
            "ListTrainingJobs": lambda: trainer.ListTrainingJobs(
                tpb.ListTrainingJobsRequest(parent=PROJECT, page_size=20), timeout=CALL_TIMEOUT_SECONDS),
            "ListDatasets": lambda: data.ListDatasets(
                dpb.ListDatasetsRequest(parent=PROJECT, page_size=20), timeout=CALL_TIMEOUT_SECONDS),
            "GetDataset": lambda: data.GetDataset(
                dpb.GetDatasetRequest(name=world.dataset), timeout=CALL_TIMEOUT_SECONDS),
            "GetModel": lambda: trainer.GetModel(
                tpb.GetModelRequest(name=world.model), timeout=CALL_TIMEOUT_SECONDS),
            "ListModels": lambda: trainer.ListModels(
                tpb.ListModelsRequest(parent=PROJECT, page_size=20), timeout=CALL_TIMEOUT_SECONDS),
        }
        methods, weights = list(MIX), list(MIX.values())
        loop = asyncio.get_running_loop()
        while self._running:
            if loop.time() >= self._next_churn:
                self._next_churn += self.plan.churn_interval
                await self._churn(trainer)
                continue
            method = self.random.choices(methods, weights)[0]
            if method == "StreamTrainingLogs":
                await self._read_logs(trainer)
            else:
                await self._unary(method, reads[method]())

    async def _unary(self, method: str, call):
        """Await one unary call; its response, or None after counting its error."""
        started = time.perf_counter()
        try:
            response = await call
        except grpc.aio.AioRpcError as exc:
            self.tally.rpc_error(method, exc)
            return None
        self.tally.latencies[method].append(time.perf_counter() - started)
        return response

    async def _read_logs(self, trainer) -> None:
        """A non-following read of the finished job's whole log, or of a running job's latest entries."""
        from forge.training.v1 import trainer_service_pb2 as tpb

        job = self.random.choice([self.world.finished_job, *self.world.long_jobs])
        after = max(0, self.latest_epoch.get(job, 0) - LOG_TAIL)
        started = time.perf_counter()
        entries = 0
        try:
            call = trainer.StreamTrainingLogs(tpb.StreamTrainingLogsRequest(name=job, from_sequence=after,
                                                                            follow=False),
                                              timeout=CALL_TIMEOUT_SECONDS)
            async for message in call:
                entries += len(message.entries)
        except grpc.aio.AioRpcError as exc:
            self.tally.rpc_error("StreamTrainingLogs", exc)
            return
        if not entries:
            self.tally.error("StreamTrainingLogs", "EMPTY", f"no log entries of {job} after {after}")
            return
        self.tally.latencies["StreamTrainingLogs"].append(time.perf_counter() - started)

    async def _churn(self, trainer) -> None:
        """Start a tiny job and cancel it at once, as a user who changed their mind."""
        from forge.training import common_pb2
        from forge.training.v1 import trainer_service_pb2 as tpb

        started = await self._unary("StartTraining", trainer.StartTraining(
            tpb.StartTrainingRequest(parent=PROJECT, spec=self.churn_spec), timeout=CALL_TIMEOUT_SECONDS))
        if started is None:
            return
        name = started.training_job.name
        self.churn_jobs.append(name)
        cancelled = await self._unary("CancelTraining", trainer.CancelTraining(
            tpb.CancelTrainingRequest(name=name), timeout=CALL_TIMEOUT_SECONDS))
        if cancelled is not None and cancelled.training_job.state not in (common_pb2.JOB_STATE_CANCELLING,
                                                                         common_pb2.JOB_STATE_CANCELLED):
            self.tally.error("CancelTraining", "NOT_CANCELLED",
                             f"{name} is {common_pb2.JobState.Name(cancelled.training_job.state)}")


def _latency_summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"count": len(ordered), "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 2)}


def summarize(load: Load, elapsed: float) -> dict:
    latencies = load.tally.latencies
    every = [v for values in latencies.values() for v in values]
    watchers = load.watchers
    points = sum(w.points for w in watchers)
    firsts = sorted(w.first_message_seconds for w in watchers if w.first_message_seconds is not None)
    return {
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        "latency": {"overall": _latency_summary(every),
                    **{method: _latency_summary(values) for method, values in sorted(latencies.items())}},
        "errors": sum(load.tally.errors.values()),
        "errors_by_method_and_code": dict(load.tally.errors),
        "error_samples": load.tally.error_samples,
        "watchers": {
            "streams": len(watchers),
            "streams_with_points": sum(1 for w in watchers if w.points),
            # From the start of the load (when every stream is opened at once) to its first message.
            "first_message_p50_s": round(percentile(firsts, 0.5), 2),
            "first_message_max_s": round(firsts[-1] if firsts else 0.0, 2),
            "messages": sum(w.messages for w in watchers),
            "points": points,
            "points_per_second": round(points / elapsed, 1),
            "gaps": sum(w.gaps for w in watchers),
            "repeats": sum(w.repeats for w in watchers),
            "ended_early": sum(1 for w in watchers if w.ended_early),
            "dropped": sum(1 for w in watchers if w.error),
            "drops": sorted(collections.Counter(w.error for w in watchers if w.error).items())[:20],
        },
        "churn_jobs": len(load.churn_jobs),
    }


def watcher_lag(target: str, load: Load) -> dict[str, dict]:
    """Per long job: the newest recorded point when the run ended, and how far behind it the
    slowest and the median watcher were (in points)."""
    from forge.training import Client, ForgeTrainingError

    lag: dict[str, dict] = {}
    with Client(target) as client:
        for job in load.world.long_jobs:
            try:
                latest = client.get_metrics(job)
            except ForgeTrainingError as exc:  # a server still digesting the load: say so, keep the run
                lag[job] = {"error": str(exc)}
                continue
            newest = latest.sequence if latest else 0
            behind = sorted(newest - w.last_sequence for w in load.watchers if w.job == job)
            lag[job] = {"newest_sequence": newest, "median_behind": percentile(behind, 0.5),
                        "max_behind": behind[-1] if behind else 0}
    return lag


def bottleneck(measured: dict) -> str:
    """What limited the run. A Python process runs Python on one core at a time (the GIL), so a
    server or generator near one core is saturated; a machine whose every core is busy starves both."""
    server, generator = measured["server"]["cpu_cores"], measured["generator_cpu_cores"]
    workers, machine = measured["server"]["workers_cpu_cores"], measured["machine"]
    shares = (f"server {server} cores, its training workers {workers}, load generator {generator}, "
              f"other programs {machine['other_processes_cores']}")
    if machine["busy_cores"] >= 0.9 * machine["cpus"] and max(server, generator) < 0.85:
        return f"the machine's CPUs: {machine['busy_cores']} of {machine['cpus']} cores busy ({shares})"
    if server >= 0.85 and server >= generator:
        return f"the server process, near one core of Python ({shares})"
    if generator >= 0.85:
        return f"the load generator, near one core of Python ({shares})"
    return f"nothing saturated: time went to waiting ({shares})"


def _log_errors(log_path: Path) -> list[str]:
    """The server log's ERROR lines and exception headers: a clean run has none."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            found.append(line[:300])
    return found


# ---------------------------------------------------------------------------
# Same-run baseline: raw grpc.aio, empty handler
# ---------------------------------------------------------------------------


async def _serve_raw() -> None:
    async def call(request: bytes, context) -> bytes:
        return b""

    server = await start_raw_server({"Call": grpc.unary_unary_rpc_method_handler(call)}, service="bench.Raw")
    await server.wait_for_termination()


async def _drive_raw(target: str, clients: int, calls: int, max_seconds: float) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = [calls]
    channels = [grpc.aio.insecure_channel(target) for _ in range(clients)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds

    async def client(channel) -> None:
        method = channel.unary_unary(RAW_METHOD)
        while remaining[0] > 0 and loop.time() < deadline:
            remaining[0] -= 1
            started = time.perf_counter()
            await method(b"", timeout=CALL_TIMEOUT_SECONDS)
            latencies.append(time.perf_counter() - started)

    started = loop.time()
    try:
        await asyncio.gather(*(client(ch) for ch in channels))
    finally:
        await asyncio.gather(*(ch.close() for ch in channels))
    return latencies, loop.time() - started


def run_baseline(scratch: Path, clients: int, calls: int, max_seconds: float) -> dict:
    """The raw gRPC figures on this machine, now: as many clients, as many unary calls."""
    command = [str(Path(__file__).resolve()), "--serve-raw"]
    with raw_process(command, scratch / "raw-server.log", timeout=30) as (_, port):
        latencies, elapsed = asyncio.run(_drive_raw(f"127.0.0.1:{port}", clients, max(1, calls), max_seconds))
    return {"what": f"an empty-handler grpc.aio server in its own process: {clients} clients, the same number "
                    f"of unary calls (at most {max_seconds:.0f} s), no watchers, no training",
            "seconds": round(elapsed, 2), "requests": len(latencies),
            "requests_per_second": round(len(latencies) / elapsed, 1), **_latency_summary(latencies)}


# ---------------------------------------------------------------------------
# One backend, end to end
# ---------------------------------------------------------------------------


def run_backend(backend: str, plan: Plan, scratch: Path, postgres_url: str = "", log_level: str = "INFO") -> dict:
    """Start a server on `backend` ("sqlite" or "postgres") with its files under `scratch`, set up,
    load it and measure; the result (measured, baseline, ratio, target, met) as a dict."""
    with contextlib.ExitStack() as stack:
        # Room for the long jobs and a few churn jobs at once: queued churn jobs would never spawn.
        args = ["--max-concurrent-jobs", str(plan.jobs + 3), "--log-level", log_level]
        if backend == "postgres":
            args += ["--database-url", stack.enter_context(postgres_database(postgres_url))]
        log_path = scratch / "server.log"
        process, port = stack.enter_context(serve_process(scratch / "data", log_path, args))
        target = f"127.0.0.1:{port}"
        world = set_up(target, scratch, plan)
        load = Load(target, world, plan)
        with ResourceSampler(process.pid) as usage:
            elapsed = asyncio.run(load.run())
        measured = summarize(load, elapsed)
        measured["watcher_lag_points"] = watcher_lag(target, load)
        measured.update(usage.report())
        measured["bottleneck"] = bottleneck(measured)
    # After the server stopped: its shutdown is part of the run.
    measured["server_log_errors"] = _log_errors(log_path)[:20]
    result = {"name": f"load-{backend}", "backend": backend, "plan": asdict(plan), "measured": measured}
    if plan.baseline:
        base = run_baseline(scratch, plan.clients, measured["requests"], plan.duration)
        result["baseline"] = base
        result["ratio"] = round(measured["requests_per_second"] / base["requests_per_second"], 4)
        result["ratio_means"] = "forge-training requests/s (with watchers and training) / raw grpc.aio requests/s"
    result["target"] = ("errors == 0; watcher sequence gaps == 0 and repeats == 0; every watcher received points "
                        "and none was dropped or ended early; no ERROR in the server log; p50/p99 latencies are "
                        "reported, not targeted")
    watchers = measured["watchers"]
    result["met"] = (measured["errors"] == 0 and watchers["gaps"] == 0 and watchers["repeats"] == 0
                     and watchers["dropped"] == 0 and watchers["ended_early"] == 0
                     and watchers["streams_with_points"] == watchers["streams"] and not measured["server_log_errors"])
    return result


def print_summary(result: dict) -> None:
    m = result["measured"]
    w = m["watchers"]
    s = m["server"]
    print(f"\n== {result['name']}: {m['requests']} requests in {m['seconds']} s = {m['requests_per_second']} req/s"
          f" ({result['plan']['clients']} clients, {w['streams']} watchers); met: {result['met']}")
    print(f"{'method':<22}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for method, figures in m["latency"].items():
        print(f"{method:<22}{figures['count']:>8}{figures['p50_ms']:>10}{figures['p99_ms']:>10}{figures['max_ms']:>10}")
    print(f"errors: {m['errors']} {m['errors_by_method_and_code'] or ''}")
    print(f"watchers: {w['streams_with_points']}/{w['streams']} got points, {w['points']} points "
          f"({w['points_per_second']}/s) in {w['messages']} messages, gaps {w['gaps']}, repeats {w['repeats']}, "
          f"dropped {w['dropped']}, ended early {w['ended_early']}; first message p50 {w['first_message_p50_s']} s, "
          f"max {w['first_message_max_s']} s; behind at the end: {m['watcher_lag_points']}")
    print(f"server: RSS {s['rss_start_mib']} -> peak {s['rss_peak_mib']}, end {s['rss_end_mib']} MiB; "
          f"CPU {s['cpu_cores']} cores; training workers {s['workers_cpu_cores']} cores")
    print(f"bottleneck: {m['bottleneck']}")
    if "baseline" in result:
        b = result["baseline"]
        print(f"baseline (raw grpc.aio): {b['requests_per_second']} req/s, p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms;"
              f" ratio {result['ratio']}")
    if m["server_log_errors"]:
        print("server log errors:\n  " + "\n  ".join(m["server_log_errors"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("FORGE_TEST_POSTGRES_URL", ""),
                        help="SQLAlchemy URL of a PostgreSQL server; a fresh database is created in it and dropped "
                             "after (default: FORGE_TEST_POSTGRES_URL)")
    parser.add_argument("--duration", type=float, default=Plan.duration, help="seconds of load (default %(default)s)")
    parser.add_argument("--clients", type=int, default=Plan.clients, help="default %(default)s")
    parser.add_argument("--watchers", type=int, default=Plan.watchers, help="default %(default)s")
    parser.add_argument("--jobs", type=int, default=Plan.jobs, help="long jobs the watchers follow "
                                                                   "(default %(default)s)")
    parser.add_argument("--churn-interval", type=float, default=Plan.churn_interval,
                        help="seconds between StartTraining+CancelTraining pairs (default %(default)s)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw grpc.aio baseline")
    parser.add_argument("--log-level", default="INFO", help="the server's (default %(default)s, as deployed)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where load-<backend>.json goes")
    parser.add_argument("--keep", type=Path, help="keep the server's data dir and log under KEEP/<backend> "
                                                  "(default: a temporary directory, removed)")
    parser.add_argument("--serve-raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_raw:
        asyncio.run(_serve_raw())
        return 0
    for name in ("duration", "clients", "jobs", "churn_interval"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.watchers < 0:
        parser.error("--watchers must be 0 or more")
    plan = Plan(clients=args.clients, watchers=args.watchers, duration=args.duration, jobs=args.jobs,
                churn_interval=args.churn_interval, baseline=not args.no_baseline)
    backends = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    if "postgres" in backends and not args.postgres_url:
        parser.error("--database postgres needs --postgres-url or FORGE_TEST_POSTGRES_URL")
    args.results.mkdir(parents=True, exist_ok=True)
    all_met = True
    for backend in backends:
        with contextlib.ExitStack() as stack:
            if args.keep:
                scratch = args.keep / backend
                scratch.mkdir(parents=True, exist_ok=True)
            else:
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"forge-load-{backend}-")))
            result = run_backend(backend, plan, scratch, args.postgres_url, args.log_level)
        path = args.results / f"{result['name']}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print_summary(result)
        print(f"wrote {path}")
        all_met &= result["met"]
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
