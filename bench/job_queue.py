"""Queue (`job_queue`: a module named queue would shadow the standard library's on bench/'s
sys.path): many small jobs through a server that runs two at a time, against the same fits done
back to back in one process.

A real `forge-training serve` (its own process, `--max-concurrent-jobs 2`, default warm
workers) gets 200 small scikit-learn jobs (SGD, 2 epochs, breast cancer set) submitted at
once, and the run is timed from the first StartTraining until the last job is COMPLETED. The
baseline is one `python` process that imports scikit-learn once and does the same 200 fits
(scaler, 2 partial_fit passes, validation metrics each epoch) back to back; its loop is timed
without the import. Reported: the wall time of both, the ratio, the service's time per job and
the scheduling overhead per job ((service wall - baseline fits) / jobs), and, from the jobs'
own timestamps, how long each waited in the queue and held a worker. What a job holds a worker
for is more than the fit: the worker's start, reading and checking the data, exporting ONNX
and pickle (with the ONNX parity check) and recording its metrics. Target: every job completes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import percentile, result, sgd_spec  # noqa: E402
from start_latency import (LABEL, SEED, breast_cancer_split, serve, upload_split,  # noqa: E402
                           wait_until_warm)

EPOCHS = 2

# The baseline: the jobs' fits, back to back, after one import.
BASELINE_FITS = r"""
import json, sys, time
import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler

train, validation, label, seed = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), sys.argv[3], int(sys.argv[4])
jobs, epochs = int(sys.argv[5]), int(sys.argv[6])
X, y = train.drop(columns=[label]).to_numpy(float), train[label].to_numpy()
Xv, yv = validation.drop(columns=[label]).to_numpy(float), validation[label].to_numpy()
started = time.perf_counter()
for job in range(jobs):
    scaler = StandardScaler().fit(X)
    Xs, Xvs = scaler.transform(X), scaler.transform(Xv)
    model = SGDClassifier(loss="log_loss", random_state=seed)
    for epoch in range(epochs):
        model.partial_fit(Xs, y, classes=np.unique(y))
        p = model.predict_proba(Xvs)
        log_loss(yv, p), accuracy_score(yv, model.classes_[p.argmax(1)])
print(json.dumps({"fits_s": time.perf_counter() - started}))
"""


def baseline(train: Path, validation: Path, jobs: int) -> dict:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", BASELINE_FITS, str(train), str(validation), LABEL, str(SEED),
                           str(jobs), str(EPOCHS)], check=True, capture_output=True, text=True)
    fits = json.loads(done.stdout)["fits_s"]
    return {"jobs": jobs, "fits_s": round(fits, 3), "process_s": round(time.monotonic() - started, 3),
            "seconds_per_fit": round(fits / jobs, 5)}


def _seconds(start, end) -> float:
    return end.ToDatetime().timestamp() - start.ToDatetime().timestamp()


def spread(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median_s": round(statistics.median(ordered), 4), "p95_s": round(percentile(ordered, 0.95), 4),
            "max_s": round(ordered[-1], 4)}


def run_queue(scratch: Path, jobs: int, server_args: list[str] = (), warm: bool = True) -> dict:
    """Submit `jobs` jobs at once to a server running two at a time; their timings."""
    from forge.training import Client, common_pb2

    train_csv, validation_csv = breast_cancer_split(scratch)
    with serve(scratch, "queue", ["--max-concurrent-jobs", "2", *server_args]) as (process, port):
        with Client(f"127.0.0.1:{port}") as client:
            train, validation = upload_split(client, train_csv, validation_csv)
            warm_after = wait_until_warm(process.pid, idle=2) if warm else None
            spec = sgd_spec(train, EPOCHS, seed=SEED, validation=validation)
            started = time.monotonic()
            names = [client.start_training(spec, training_job_id=f"queued-{i}").name
                     for i in range(jobs)]
            submitted = time.monotonic() - started
            finished = [client.wait(name, timeout=600) for name in names]
            wall = time.monotonic() - started
    completed = [job for job in finished if job.state == common_pb2.JOB_STATE_COMPLETED]
    measured = {
        "jobs": jobs, "completed": len(completed),
        "not_completed": [f"{job.name}: {job.state_message}" for job in finished if job not in completed][:5],
        "wall_s": round(wall, 3), "submit_s": round(submitted, 3), "seconds_per_job": round(wall / jobs, 4),
        "jobs_per_second": round(jobs / wall, 3),
        "queue_wait": spread([_seconds(job.create_time, job.start_time) for job in completed]),
        # From its worker's start to COMPLETED: what one job holds a worker slot for.
        "worker_held": spread([_seconds(job.start_time, job.end_time) for job in completed]),
        "attempts_over_1": sum(job.attempt_count > 1 for job in finished),
    }
    if warm_after is not None:
        measured["warm_ready_after_s"] = round(warm_after, 2)
    return measured, (train_csv, validation_csv)


def run(scratch: Path, quick: bool) -> list[dict]:
    jobs = 6 if quick else 200
    load_before = round(os.getloadavg()[0], 2)
    measured, (train_csv, validation_csv) = run_queue(scratch, jobs)
    base = baseline(train_csv, validation_csv, jobs)
    measured["overhead_per_job_s"] = round((measured["wall_s"] - base["fits_s"]) / jobs, 4)
    measured["load_average_1m_before"] = load_before
    return [result("job_queue", measured, {"fits_back_to_back": base}, measured["wall_s"] / base["fits_s"],
                   f"all {jobs} jobs complete (max concurrent jobs 2); scheduling overhead per job reported",
                   measured["completed"] == jobs)]
