"""What the benchmarks share: where results go, the result format, a server as a process of
its own, a fresh PostgreSQL database, and a sampler of the server's memory and CPU.

Every benchmark writes bench/results/<name>.json (see `result`): the measured figures, the
baseline measured in the same run, their ratio, the target and whether it was met.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, nearest rank; 0.0 for none."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def result(name: str, measured: dict, baseline: dict | None, ratio: float | None, target: str, met: bool,
           **extra) -> dict:
    """One benchmark's result, as written to bench/results/<name>.json. `ratio` is the figure
    the target is about (e.g. service time / direct time), both measured in the same run."""
    return {"name": name, "measured": measured, "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 4), "target": target, "met": bool(met), **extra,
            "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}}


def write_result(res: dict, results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{res['name']}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    return path


@contextlib.contextmanager
def serve_process(data_dir: Path, log_path: Path, args: list[str]) -> Iterator[tuple[subprocess.Popen, int]]:
    """`forge-training serve` on a free loopback port; yields (process, port), stops it with SIGTERM.

    Its log goes to a file rather than a pipe: a pipe would need a reader thread in this process,
    which shares the load generator's GIL (the server logs one access line per call)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", str(data_dir), *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        port = wait_for_line(process, log_path, re.compile(r"serving on [\d.]+:(\d+)"))
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_for_line(process: subprocess.Popen, log_path: Path, pattern: re.Pattern, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(log_path.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    tail = log_path.read_text(errors="replace").splitlines()[-30:]
    raise RuntimeError(f"{process.args[:4]} did not start:\n" + "\n".join(tail))


# The small real jobs most benchmarks train: SGD on scikit-learn's bundled breast cancer set.
BREAST_CANCER_LABEL = "target"


def breast_cancer_frame():
    """scikit-learn's bundled breast cancer set as a DataFrame, its column names without spaces."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame


def sgd_spec(train: str, epochs: int, seed: int = 1, validation: str = "") -> dict:
    """A StartTraining spec: an SGD classifier of the breast cancer label on dataset `train`."""
    data = {"trainDataset": train, "labelColumn": BREAST_CANCER_LABEL}
    if validation:
        data["validationDataset"] = validation
    return {"modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": seed}, "dataConfig": data}


# The baselines: a bare grpc.aio server in a process of its own, serving the method under the
# service's own name with the generated messages (nothing of forge-training's server).
RAW_SERVICE = "forge.training.v1.TrainerService"
_RAW_ANNOUNCEMENT = "raw serving on 127.0.0.1:{port}"


async def start_raw_server(handlers: dict, service: str = RAW_SERVICE):
    """A grpc.aio server of `handlers` (method name -> RpcMethodHandler) on a free loopback port,
    started, its port announced on stdout for raw_process; returns the server."""
    import grpc

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(_RAW_ANNOUNCEMENT.format(port=port), flush=True)
    return server


@contextlib.contextmanager
def raw_process(args: list[str], log_path: Path, timeout: float = 60) -> Iterator[tuple[subprocess.Popen, int]]:
    """`python ARGS` (a bench module serving its baseline with start_raw_server); yields (process,
    port) once the port is announced, and kills it after."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield process, wait_for_line(process, log_path, re.compile(r"raw serving on [\d.]+:(\d+)"), timeout=timeout)
    finally:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh database inside the PostgreSQL server of `url` (a SQLAlchemy URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(url)
    name = f"forge_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent on anything but idling, all cores together."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class ResourceSampler:
    """While the load runs: the server's RSS (sampled every `interval` s) and CPU, its worker
    processes' (the training jobs'), this process's (the load generator's) and the machine's.
    CPU seconds come from cpu_times, so sampling gaps do not bias them; a worker that lives
    between two samples is missed, one that ends between them loses its last interval."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.server = psutil.Process(pid)
        self.generator = psutil.Process()
        self.interval = interval
        self.peak_rss = 0
        self.peak_workers_rss = 0
        # pid -> niceness, of the training workers alive when the load starts, then when it ends.
        self._niceness: list[dict[int, int]] = []
        # pid -> (CPU seconds when first seen in the window, latest CPU seconds)
        self._workers: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, first: bool = False, last: bool = False) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, self.server.memory_info().rss)
        rss = 0
        niceness: dict[int, int] = {}
        with contextlib.suppress(psutil.Error):
            for child in self.server.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    cpu = _cpu_seconds(child)
                    rss += child.memory_info().rss
                    # Spawned workers, and the warm template with the warm workers forked from it;
                    # not the resource tracker.
                    if any("spawn_main" in part or "forkserver" in part for part in child.cmdline()):
                        niceness[child.pid] = child.nice()
                    # A worker started inside the window counts from zero.
                    start = self._workers.get(child.pid, (cpu if first else 0.0, 0.0))[0]
                    self._workers[child.pid] = (start, cpu)
        self.peak_workers_rss = max(self.peak_workers_rss, rss)
        if first or last:
            self._niceness.append(niceness)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self.start_rss = self.server.memory_info().rss
        self._sample(first=True)
        self._start = (time.monotonic(), _cpu_seconds(self.server), _cpu_seconds(self.generator), _busy_seconds())
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(last=True)
        wall = time.monotonic() - self._start[0]
        self.end_rss = self.server.memory_info().rss
        self.cpu_cores = (_cpu_seconds(self.server) - self._start[1]) / wall
        self.generator_cpu_cores = (_cpu_seconds(self.generator) - self._start[2]) / wall
        self.workers_cpu_cores = sum(last - first for first, last in self._workers.values()) / wall
        self.machine_busy_cores = (_busy_seconds() - self._start[3]) / wall

    def report(self) -> dict:
        mib = 1 << 20
        ours = self.cpu_cores + self.workers_cpu_cores + self.generator_cpu_cores
        return {
            "server": {"rss_start_mib": round(self.start_rss / mib, 1), "rss_peak_mib": round(self.peak_rss / mib, 1),
                       "rss_end_mib": round(self.end_rss / mib, 1), "cpu_cores": round(self.cpu_cores, 2),
                       "workers_cpu_cores": round(self.workers_cpu_cores, 2),
                       "workers_peak_rss_mib": round(self.peak_workers_rss / mib, 1),
                       "niceness": self.server.nice(),
                       # Of the workers that trained through the whole load (the long jobs'); a
                       # churn job's worker is at the server's niceness until its main() runs.
                       "workers_niceness": sorted({nice for pid, nice in self._niceness[-1].items()
                                                   if pid in self._niceness[0]})},
            "generator_cpu_cores": round(self.generator_cpu_cores, 2),
            "machine": {"cpus": os.cpu_count(), "busy_cores": round(self.machine_busy_cores, 2),
                        # What other programs on this machine took meanwhile.
                        "other_processes_cores": round(max(0.0, self.machine_busy_cores - ours), 2),
                        "load_average_1m_after": round(os.getloadavg()[0], 2)},
        }


