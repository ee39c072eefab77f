"""Train a PyTorch and a Keras model on CUDA and print throughput and GPU use.

For machines with a GPU (tests never need one). It drives the same adapters a worker
process uses, with resources.gpu = 1 and mixed precision on, on generated data, and prints
one JSON line per framework:

    .venv/bin/python scripts/gpu_check.py [--rows 200000] [--epochs 3]

Exit status 2 means no CUDA device was visible to the framework.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.frameworks.base import TrainingData  # noqa: E402
from engine.frameworks.registry import get_adapter  # noqa: E402
from engine.jobs.spec import RegularizationSpec, ResourceSpec, TrainingSpec  # noqa: E402
from engine.monitor.resources import ResourceSampler  # noqa: E402


def data(rows: int, features: int = 64) -> TrainingData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    y = (X[:, :8].sum(axis=1) + rng.normal(0, 1, rows) > 0).astype(int)
    cut = int(rows * 0.9)
    return TrainingData(task="classification", feature_names=[f"f{i}" for i in range(features)], label_name="y",
                        X_train=X[:cut], y_train=y[:cut], X_val=X[cut:], y_val=y[cut:], classes=[0, 1])


def check(framework: str, training: TrainingData, epochs: int) -> dict:
    spec = TrainingSpec(framework=framework, architecture="mlp", model_type="classification", epochs=epochs,
                        batch_size=1024, learning_rate=0.001, mixed_precision=True,
                        hyperparameters={"hidden_units": [1024, 1024, 512]},
                        regularization=RegularizationSpec(batch_norm=True),
                        resources=ResourceSpec(gpu=1))
    adapter = get_adapter(framework)
    adapter.validate(spec)
    run = adapter.create_run(spec, training)
    sampler = ResourceSampler()
    seconds, samples = [], []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        result = run.train_epoch(epoch)
        seconds.append(time.perf_counter() - started)
        samples.append(sampler.sample())
        logs = result.logs
    usage = samples[-1]
    return {
        "framework": framework,
        "device_log": [line for line in logs if "GPU" in line or "cuda" in line.lower()][:3],
        "gpu_present": usage["gpu_present"],
        "rows_per_second": round(len(training.X_train) / min(seconds[1:] or seconds)),
        "first_epoch_seconds": round(seconds[0], 3),
        "gpu_usage": usage.get("gpu_usage"),
        "gpu_memory_mib": round(usage.get("gpu_memory", 0) / 2**20),
        "accuracy": round(result.metrics.get("accuracy", float("nan")), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device visible to torch"}))
        return 2
    training = data(args.rows)
    for framework in ("pytorch", "tensorflow"):
        print(json.dumps(check(framework, training, args.epochs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
