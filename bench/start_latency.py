"""Start latency: StartTraining to the first metric point of a small scikit-learn job, against
a plain process that imports scikit-learn and fits the same model.

A real `forge-training serve` (its own process) runs with its default warm workers; once they
are ready (the warm template process and its idle forks exist), each run starts an SGD job on
scikit-learn's breast cancer set and times StartTraining until WatchTrainingMetrics yields the
job's first point (epoch 1 trained, its metrics recorded and streamed). The baseline is what a
user would run by hand: a fresh `python` that imports pandas and scikit-learn, reads the same
train and validation rows, fits the scaler and one partial_fit pass, and computes the
validation loss and accuracy; timed from launch to exit. Also reported: when the server
recorded each first point (the rest is the stream's delivery), the idle warm processes' memory
and, at full size, the service with `--warm-workers 0` (every job in a freshly spawned
process, as before warm workers). Target: the service's median under 0.5 s.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from datetime import timezone
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import BREAST_CANCER_LABEL, breast_cancer_frame, result, serve_process, sgd_spec  # noqa: E402

TARGET_SECONDS = 0.5
LABEL = BREAST_CANCER_LABEL
SEED = 7

# The baseline: the same model on the same rows, fitted by hand in a process of its own.
BASELINE_FIT = r"""
import json, sys
import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler

train, validation, label, seed = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), sys.argv[3], int(sys.argv[4])
X, y = train.drop(columns=[label]).to_numpy(float), train[label].to_numpy()
Xv, yv = validation.drop(columns=[label]).to_numpy(float), validation[label].to_numpy()
scaler = StandardScaler().fit(X)
model = SGDClassifier(loss="log_loss", random_state=seed)
model.partial_fit(scaler.transform(X), y, classes=np.unique(y))
p = model.predict_proba(scaler.transform(Xv))
print(json.dumps({"validation_loss": log_loss(yv, p), "accuracy": accuracy_score(yv, model.classes_[p.argmax(1)])}))
"""


def breast_cancer_split(scratch: Path) -> tuple[Path, Path]:
    """scikit-learn's bundled breast cancer set as train and validation CSVs (80/20, seeded)."""
    shuffled = breast_cancer_frame().sample(frac=1.0, random_state=SEED)
    cut = int(len(shuffled) * 0.8)
    train, validation = scratch / "train.csv", scratch / "validation.csv"
    shuffled.iloc[:cut].to_csv(train, index=False)
    shuffled.iloc[cut:].to_csv(validation, index=False)
    return train, validation


def upload_split(client, train: Path, validation: Path) -> tuple[str, str]:
    return (client.upload_dataset(train, dataset_id="bench-train", label_column=LABEL).name,
            client.upload_dataset(validation, dataset_id="bench-validation", label_column=LABEL).name)


def baseline_seconds(train: Path, validation: Path) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", BASELINE_FIT, str(train), str(validation), LABEL, str(SEED)],
                   check=True, capture_output=True)
    return time.monotonic() - started


def warm_processes(server_pid: int) -> tuple[psutil.Process | None, list[psutil.Process]]:
    """The server's warm template (the forkserver its warm workers are forked from) and the
    template's children: idle warm workers, and any running job's worker."""
    for child in psutil.Process(server_pid).children():
        with contextlib.suppress(psutil.Error):
            if any("multiprocessing.forkserver" in part for part in child.cmdline()):
                return child, child.children()
    return None, []


def wait_until_warm(server_pid: int, idle: int, timeout: float = 180) -> float:
    """Seconds until the template has `idle` forks waiting for a job."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        template, forks = warm_processes(server_pid)
        if template is not None and len(forks) >= idle:
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"the server had no {idle} warm workers after {timeout:g} s")


def memory_of(processes: list[psutil.Process]) -> list[dict]:
    """RSS counts every page a process maps, those it shares with the template (copy-on-write)
    included; PSS divides each shared page among its sharers; USS counts only a process's own."""
    found = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            found.append({"pid": process.pid, "rss_mib": round(info.rss / 2**20, 1),
                          "pss_mib": round(info.pss / 2**20, 1), "uss_mib": round(info.uss / 2**20, 1)})
    return found


def time_starts(client, train: str, validation: str, runs: int, prefix: str,
                between=None) -> tuple[list[float], list[float]]:
    """Seconds from StartTraining until the job's first metric point reached its watcher, and
    until the server recorded it (its timestamp; the server runs on this machine), one job at
    a time; each job completes before the next starts (`between` runs after each, e.g. to wait
    for the pool)."""
    from forge.training import common_pb2

    received, recorded = [], []
    for i in range(runs):
        started, wall = time.monotonic(), time.time()
        spec = sgd_spec(train, 2, seed=SEED, validation=validation)
        job = client.start_training(spec, training_job_id=f"{prefix}-{i}")
        first = next(iter(client.watch_metrics(job.name)))
        received.append(time.monotonic() - started)
        recorded.append(first.time.ToDatetime(tzinfo=timezone.utc).timestamp() - wall)
        assert first.epoch == 1, first
        done = client.wait(job.name, timeout=300)
        if done.state != common_pb2.JOB_STATE_COMPLETED:
            raise RuntimeError(f"{job.name} ended {done.state}: {done.state_message}")
        if between is not None:
            between()
    return received, recorded


def summary(seconds: list[float]) -> dict:
    return {"runs": len(seconds), "median_s": round(statistics.median(seconds), 4),
            "min_s": round(min(seconds), 4), "max_s": round(max(seconds), 4),
            "all_s": [round(s, 4) for s in seconds]}


def serve(scratch: Path, name: str, args: list[str]):
    data_dir = scratch / name
    data_dir.mkdir()
    return serve_process(data_dir, scratch / f"{name}.log", args)


def run(scratch: Path, quick: bool) -> list[dict]:
    from forge.training import Client

    warm_runs, cold_runs, baseline_runs = (2, 0, 1) if quick else (7, 3, 3)
    train_csv, validation_csv = breast_cancer_split(scratch)
    load_before = round(os.getloadavg()[0], 2)
    measured: dict = {}

    with serve(scratch, "warm", ["--max-concurrent-jobs", "2"]) as (process, port):
        with Client(f"127.0.0.1:{port}") as client:
            train, validation = upload_split(client, train_csv, validation_csv)
            measured["warm_ready_after_s"] = round(wait_until_warm(process.pid, idle=2), 2)
            template, forks = warm_processes(process.pid)
            measured["idle_warm_memory"] = {"template": memory_of([template])[0], "idle_workers": memory_of(forks)}
            warm, recorded = time_starts(client, train, validation, warm_runs, "warm",
                                         between=lambda: wait_until_warm(process.pid, idle=2))
    measured["service_warm"] = summary(warm)
    # What of it the server took to train and record the point; the rest is the stream's delivery.
    measured["service_warm_recorded"] = summary(recorded)

    if cold_runs:
        with serve(scratch, "cold", ["--max-concurrent-jobs", "2", "--warm-workers", "0"]) as (process, port):
            with Client(f"127.0.0.1:{port}") as client:
                train, validation = upload_split(client, train_csv, validation_csv)
                time.sleep(1.0)
                if warm_processes(process.pid)[0] is not None:
                    measured["service_cold"] = {"error": "the server kept warm workers under --warm-workers 0"}
                else:
                    measured["service_cold"] = summary(time_starts(client, train, validation, cold_runs, "cold")[0])

    baseline = summary([baseline_seconds(train_csv, validation_csv) for _ in range(baseline_runs)])
    measured["load_average_1m_before"] = load_before
    service = measured["service_warm"]["median_s"]
    return [result("start_latency", measured, {"plain_process": baseline}, service / baseline["median_s"],
                   f"StartTraining to the first metric point under {TARGET_SECONDS} s (median) with warm workers",
                   service < TARGET_SECONDS)]
