"""Overhead: what training through the service costs on top of the framework it drives.

    .venv/bin/python bench/run.py --only overhead [--quick]

Two results, each the same training done twice in this run:

- overhead-xgboost: a binary XGBoost classifier, 200 boosting rounds on 200,000 rows x 50
  numeric features (40,000 validation rows);
- overhead-pytorch: the pytorch adapter's default MLP ([64, 32], ReLU, Adam 0.001, batch 32,
  the API's default batch size), 5 epochs on the same table.

Measured ("service"): a real `forge-training serve` process; the data are registered once
with CreateDataset (timed and reported, not counted), then the clock runs from the
StartTraining call to the client seeing the job COMPLETED. That includes the queue, the worker
process's spawn and its imports, reading and converting the Parquet files, every epoch's
metrics (recorded in the database), the end-of-training exports and model registration. The
spec is the API's defaults (no checkpoints, no early stopping) unless --checkpoints is given
(see CHECKPOINT_VARIANT).

Baseline ("direct"): the same training written as a plain script against the framework, run
as a Python process of its own (bench/overhead.py direct ...): the clock runs from starting
the process to its exit, so it pays for its interpreter, its imports and reading the same
Parquet files too. It replicates what the adapters do: for XGBoost the booster parameters
(eta 0.3, seed, seed_per_iteration, all CPUs) and xgb.train with the training and validation
sets as evals (the losses the service reports per round); for PyTorch the network, its
initialisation from the seed, the per-epoch shuffling seeds, the optimizer, the thread count
the adapter picks for a network this small (one), and a validation loss per epoch. It saves
the trained model once (the service stores it and its exports). Both run at the niceness
the service gives its workers, so other programs on the machine weigh on both alike.

Target: service seconds / direct seconds <= 1.10, and the same final validation loss (within
METRIC_RTOL: the same training gives the same numbers). Each result also carries the
service's timeline (from the job's log: worker start, data loaded, first and last epoch,
exports, completion), which shows where any extra time goes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, ResourceSampler, result, serve_process  # noqa: E402

TARGET_RATIO = 1.10
# Final validation losses agree to this relative difference: XGBoost's are bit-identical;
# PyTorch's may differ in the last float32 bits (the service averages per-row losses).
METRIC_RTOL = 1e-3
LABEL = "label"
SEED = 7
# What engine/jobs/worker.py adds to a worker's niceness; the direct baseline runs at the same.
WORKER_NICENESS = 10


@dataclass(frozen=True)
class Sizes:
    rows: int
    validation_rows: int
    features: int
    rounds: int  # XGBoost boosting rounds
    epochs: int  # PyTorch epochs
    batch_size: int = 32  # the API's default (TrainingConfig.batch_size)


FULL = Sizes(rows=200_000, validation_rows=40_000, features=50, rounds=200, epochs=5)
QUICK = Sizes(rows=2_000, validation_rows=400, features=10, rounds=10, epochs=2)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def make_data(scratch: Path, sizes: Sizes) -> tuple[Path, Path]:
    """A seeded binary classification table with some non-linear signal, as two Parquet files."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    weights = rng.normal(0.0, 0.3, sizes.features)

    def table(n: int) -> pd.DataFrame:
        X = rng.standard_normal((n, sizes.features))
        z = X @ weights + np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2 % sizes.features]
        y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
        frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(sizes.features)])
        frame[LABEL] = y
        return frame

    paths = scratch / "train.parquet", scratch / "validation.parquet"
    table(sizes.rows).to_parquet(paths[0], index=False)
    table(sizes.validation_rows).to_parquet(paths[1], index=False)
    return paths


# ---------------------------------------------------------------------------
# The direct baseline: a plain script, run as `python bench/overhead.py direct ...`
# ---------------------------------------------------------------------------


def _direct_xgboost(args: argparse.Namespace, clock: dict[str, float]) -> dict:
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    clock["imported"] = time.perf_counter()
    train, validation = pd.read_parquet(args.train), pd.read_parquet(args.validation)
    features = [c for c in train.columns if c != LABEL]
    threads = len(os.sched_getaffinity(0))
    dtrain = xgb.DMatrix(train[features].to_numpy(np.float64), label=train[LABEL].to_numpy(np.float64),
                         nthread=threads)
    dval = xgb.DMatrix(validation[features].to_numpy(np.float64), label=validation[LABEL].to_numpy(np.float64),
                       nthread=threads)
    clock["data"] = time.perf_counter()
    params = {"eta": 0.3, "seed": args.seed, "seed_per_iteration": True, "verbosity": 1, "nthread": threads,
              "objective": "binary:logistic", "eval_metric": "logloss"}
    history: dict = {}
    booster = xgb.train(params, dtrain, num_boost_round=args.rounds, evals=[(dtrain, "train"), (dval, "validation")],
                        evals_result=history, verbose_eval=False)
    clock["trained"] = time.perf_counter()
    accuracy = float(np.mean((booster.predict(dval) > 0.5) == validation[LABEL].to_numpy()))
    booster.save_model(Path(args.out) / "model.ubj")
    return {"validation_loss": history["validation"]["logloss"][-1], "accuracy": accuracy,
            "training_loss": history["train"]["logloss"][-1], "threads": threads}


def _epoch_seed(seed: int, epoch: int) -> int:
    """The pytorch adapter's shuffling seed of `epoch` (engine/frameworks/pytorch_adapter.py)."""
    import numpy as np

    return int(np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1, np.uint64)[0])


def _direct_pytorch(args: argparse.Namespace, clock: dict[str, float]) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    import torch.nn.functional as F
    from torch import nn

    clock["imported"] = time.perf_counter()
    torch.set_num_threads(args.threads)
    train, validation = pd.read_parquet(args.train), pd.read_parquet(args.validation)
    features = [c for c in train.columns if c != LABEL]
    X = train[features].to_numpy(np.float64)
    std = X.std(axis=0)
    mean, std = torch.as_tensor(X.mean(axis=0)).float(), torch.as_tensor(np.where(std > 0, std, 1.0)).float()
    classes = np.unique(np.concatenate([train[LABEL].to_numpy(), validation[LABEL].to_numpy()]))
    X_train, X_val = torch.as_tensor(X.astype(np.float32)), torch.as_tensor(validation[features].to_numpy(np.float32))
    y_train = torch.as_tensor(np.searchsorted(classes, train[LABEL].to_numpy()))
    y_val = torch.as_tensor(np.searchsorted(classes, validation[LABEL].to_numpy()))
    clock["data"] = time.perf_counter()

    torch.manual_seed(args.seed)
    net = nn.Sequential(nn.Linear(len(features), 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                        nn.Linear(32, len(classes)))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
    for epoch in range(1, args.epochs + 1):
        net.train()
        order = torch.randperm(len(X_train), generator=torch.Generator().manual_seed(_epoch_seed(args.seed, epoch)))
        for rows in order.split(args.batch_size):
            loss = F.cross_entropy(net((X_train[rows] - mean) / std), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            out = net((X_val - mean) / std)
            validation_loss = float(F.cross_entropy(out, y_val))
    clock["trained"] = time.perf_counter()
    accuracy = float((out.argmax(dim=1) == y_val).double().mean())
    torch.save(net.state_dict(), Path(args.out) / "model.pt")
    return {"validation_loss": validation_loss, "accuracy": accuracy, "threads": args.threads}


def direct_main(argv: list[str]) -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="overhead.py direct")
    parser.add_argument("framework", choices=("xgboost", "pytorch"))
    parser.add_argument("--train", required=True)
    parser.add_argument("--validation", required=True)
    parser.add_argument("--out", required=True, help="a folder for the model and result.json")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--rounds", type=int, default=FULL.rounds)
    parser.add_argument("--epochs", type=int, default=FULL.epochs)
    parser.add_argument("--batch-size", type=int, default=FULL.batch_size)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    clock: dict[str, float] = {}
    metrics = (_direct_xgboost if args.framework == "xgboost" else _direct_pytorch)(args, clock)
    done = time.perf_counter()
    phases = {"import_seconds": clock["imported"] - started, "data_seconds": clock["data"] - clock["imported"],
              "train_seconds": clock["trained"] - clock["data"], "finish_seconds": done - clock["trained"]}
    (Path(args.out) / "result.json").write_text(json.dumps({"final": metrics, "phases": phases}))


def run_direct(framework: str, train: Path, validation: Path, sizes: Sizes, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "direct", framework, "--train", str(train),
               "--validation", str(validation), "--out", str(out), "--seed", str(SEED), "--rounds", str(sizes.rounds),
               "--epochs", str(sizes.epochs), "--batch-size", str(sizes.batch_size)]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              preexec_fn=lambda: os.nice(WORKER_NICENESS))
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0:
        raise RuntimeError(f"the direct {framework} baseline failed:\n{finished.stderr[-3000:]}")
    report = json.loads((out / "result.json").read_text())
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2), **report}


# ---------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------


def _spec(framework: str, train: str, validation: str, sizes: Sizes, checkpoints: bool) -> dict:
    if framework == "xgboost":
        model, epochs = {"framework": "xgboost", "architecture": "classifier"}, sizes.rounds
    else:
        model, epochs = {"framework": "pytorch", "architecture": "mlp"}, sizes.epochs
    training = {"epochs": epochs, "seed": SEED, "batchSize": sizes.batch_size}
    if checkpoints:
        training["checkpoints"] = {"enabled": True}
    return {"modelType": "classification", "modelConfig": model, "trainingConfig": training,
            "dataConfig": {"trainDataset": train, "validationDataset": validation, "labelColumn": LABEL}}


# Log lines of the worker that mark a phase of the job, in the order they come.
_MARKS = (("worker_started", "worker "), ("data_loaded", "data: "), ("first_epoch_done", "epoch 1/"),
          ("first_export_done", "exported "), ("registered", "registered as "))


def _seconds(timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def _timeline(logs, job, started_wall: float) -> dict[str, float]:
    """Seconds from the StartTraining call to each phase, from the times of the job's log entries."""
    marks: dict[str, float] = {}
    last_epoch = None
    for entry in logs:
        at = _seconds(entry.time)
        for key, prefix in _MARKS:
            if key not in marks and entry.message.startswith(prefix):
                marks[key] = round(at - started_wall, 3)
        if entry.message.startswith("epoch ") and entry.epoch:
            last_epoch = at
    if last_epoch is not None:
        marks["last_epoch_done"] = round(last_epoch - started_wall, 3)
    marks["completed"] = round(_seconds(job.end_time) - started_wall, 3)
    return dict(sorted(marks.items(), key=lambda kv: kv[1]))


def run_service(client, server_pid: int, framework: str, train: str, validation: str, sizes: Sizes,
                checkpoints: bool) -> dict:
    spec = _spec(framework, train, validation, sizes, checkpoints)
    # The worker's CPU is read from its process while it lives: a job shorter than the sampling
    # interval (the quick sizes' XGBoost job takes about 0.15 s) would be missed whole.
    interval = 0.2 if sizes.rows > QUICK.rows else 0.02
    with ResourceSampler(server_pid, interval=interval) as sampler:
        started_wall, started = time.time(), time.monotonic()
        job = client.start_training(spec, training_job_id=f"overhead-{framework}{'-ckpt' if checkpoints else ''}")
        # Followed by the metric stream, which ends when the job reaches a final state: polling
        # GetTrainingJob often enough to time it would load the server the job shares the CPU with.
        points = list(client.watch_metrics(job.name))
        seconds = time.monotonic() - started
    done = client.get_job(job.name)
    if not done.state_message.startswith("completed"):
        raise RuntimeError(f"{framework} job ended {done.state_message!r}")
    last = points[-1]
    final = {"validation_loss": last.validation_loss, "accuracy": last.accuracy,
             "training_loss": last.training_loss, "epochs": last.epoch}
    logs = client.get_logs(job.name)
    if framework == "pytorch" and not any("one CPU thread" in entry.message for entry in logs):
        # The direct baseline trains on the one thread the adapter picks for a network this small.
        raise RuntimeError("the service trained the MLP on more than one thread; the direct baseline must too")
    # CPU seconds of the server and of its descendants (the worker; sampled, so its last 0.2 s
    # may be missed): what the job cost, whatever else the machine was doing.
    cpu = {"server_cpu_seconds": round(sampler.cpu_cores * seconds, 2),
           "worker_cpu_seconds": round(sampler.workers_cpu_cores * seconds, 2)}
    # The same span by the server's clock: the job's creation to its COMPLETED state.
    span = _seconds(done.end_time) - _seconds(done.create_time)
    return {"seconds": round(seconds, 3), "server_span_seconds": round(span, 3), "final": final, **cpu,
            "timeline": _timeline(logs, done, started_wall)}


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


def _compare(name: str, service: dict, direct: dict, sizes: Sizes, registration: dict) -> dict:
    ratio = service["seconds"] / direct["seconds"]
    ours, theirs = service["final"]["validation_loss"], direct["final"]["validation_loss"]
    same = math.isclose(ours, theirs, rel_tol=METRIC_RTOL)
    return result(
        name, {"service_seconds": service["seconds"], **service}, {"direct_seconds": direct["seconds"], **direct},
        ratio, f"service / direct <= {TARGET_RATIO}, same final validation loss (rel {METRIC_RTOL:g})",
        ratio <= TARGET_RATIO and same,
        same_final_metric=same,
        validation_loss_difference=abs(ours - theirs),
        sizes={"rows": sizes.rows, "validation_rows": sizes.validation_rows, "features": sizes.features,
               **({"rounds": sizes.rounds} if "xgboost" in name else
                  {"epochs": sizes.epochs, "batch_size": sizes.batch_size})},
        data_registration=registration)


def run(scratch: Path, quick: bool, frameworks: tuple[str, ...] = ("xgboost", "pytorch"),
        checkpoints: bool = False, service_first: bool = False) -> list[dict]:
    from forge.training import Client

    sizes = QUICK if quick else FULL
    train_path, validation_path = make_data(scratch, sizes)
    results = []
    with serve_process(scratch / "data", scratch / "server.log", []) as (process, port):
        # CreateDataset reads and profiles 80 MB of Parquet: more than the default 30 s on a busy machine.
        with Client(f"127.0.0.1:{port}", timeout=600) as client:
            started = time.monotonic()
            train = client.create_dataset(str(train_path), dataset_id="overhead-train", label_column=LABEL)
            validation = client.create_dataset(str(validation_path), dataset_id="overhead-validation",
                                               label_column=LABEL)
            registration = {"seconds": round(time.monotonic() - started, 3), "method": "CreateDataset",
                            "bytes": train_path.stat().st_size + validation_path.stat().st_size}
            for framework in frameworks:
                def direct() -> dict:
                    return run_direct(framework, train_path, validation_path, sizes, scratch / f"direct-{framework}")

                def service() -> dict:
                    return run_service(client, process.pid, framework, train.name, validation.name, sizes, checkpoints)

                if service_first:
                    ours = service()
                    theirs = direct()
                else:
                    theirs = direct()
                    ours = service()
                name = f"overhead-{framework}" + ("-checkpoints" if checkpoints else "")
                results.append(_compare(name, ours, theirs, sizes, registration))
    return results


def main(argv: list[str]) -> None:
    """Repeated runs for development: `overhead.py measure [--quick] [--repeat N] [--checkpoints]`
    prints every run's ratios and their medians (bench/run.py runs the benchmark once)."""
    import tempfile

    parser = argparse.ArgumentParser(prog="overhead.py measure")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkpoints", action="store_true", help="checkpoint every epoch on the service side")
    parser.add_argument("--framework", action="append", choices=("xgboost", "pytorch"))
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {}
    for repetition in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="forge-bench-overhead-") as scratch:
            # Every other repetition measures the service first, so a trend in the machine's
            # load favours neither side.
            for res in run(Path(scratch), args.quick, tuple(args.framework or ("xgboost", "pytorch")),
                           args.checkpoints, service_first=repetition % 2 == 1):
                runs.setdefault(res["name"], []).append(res)
                ours, theirs = res["measured"], res["baseline"]
                print(json.dumps({k: res[k] for k in ("name", "ratio", "met", "machine")}), flush=True)
                print("  service", ours["service_seconds"], "cpu", ours["worker_cpu_seconds"], "+ server",
                      ours["server_cpu_seconds"], ours["timeline"],
                      "\n  direct ", theirs["direct_seconds"], "cpu", theirs["cpu_seconds"], theirs["phases"],
                      "\n  final  ", ours["final"], theirs["final"], flush=True)
    for name, results in runs.items():
        print(name, "median ratio", statistics.median(r["ratio"] for r in results),
              "median service", statistics.median(r["measured"]["service_seconds"] for r in results),
              "median direct", statistics.median(r["baseline"]["direct_seconds"] for r in results))


if __name__ == "__main__":
    if sys.argv[1:2] == ["direct"]:
        direct_main(sys.argv[2:])
    elif sys.argv[1:2] == ["measure"]:
        main(sys.argv[2:])
    else:
        sys.exit("usage: overhead.py direct ... | overhead.py measure [--quick] [--repeat N]")
