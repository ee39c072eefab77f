"""A whole PyTorch job on a GPU, through the engine as a user's job runs (worker process,
metrics with GPU use, checkpoint, pause and resume onto the GPU, ONNX export checked against
the trained network), and the same job on the CPU for comparison. For machines with a GPU;
tests never need one (scripts/gpu_check.py drives the adapters alone).

    .venv/bin/python scripts/gpu_job_check.py [--rows 200000] [--epochs 6] [--out result.json]

Prints one JSON object (also written to --out). Exit status 2: no CUDA device visible to torch;
1: a job did not complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Engine, EngineSettings  # noqa: E402


def table(rows: int, features: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    y = (X[:, :8].sum(axis=1) + 0.5 * X[:, 8] * X[:, 9] + rng.normal(0, 1, rows) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame["label"] = y
    return frame


def cuda_found() -> dict:
    """torch's version and whether it sees a CUDA device, with the device's name when it does."""
    import torch

    found: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if found["cuda"]:
        found["device"] = torch.cuda.get_device_name(0)
    return found


@contextmanager
def engine_with_table(rows: int) -> Iterator[tuple[Engine, list, Path]]:
    """(an in-process engine, the 80/10/10 splits of a `table(rows)` dataset, a scratch folder),
    all gone when the block ends."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        table(rows).to_parquet(scratch / "table.parquet", index=False)
        with Engine(EngineSettings(data_dir=scratch / "forge-data", warm_workers=0, max_concurrent_jobs=1)) as forge:
            data = forge.data.create_dataset("default", "gpu-table", {"source_uri": str(scratch / "table.parquet"),
                                                                      "label_column": "label"})
            parts = forge.data.split(data.name, [0.8, 0.1, 0.1], seed=1, stratify_column="label", shuffle=True,
                                     dataset_ids=[])
            yield forge, parts, scratch


def request(parts, epochs: int, gpu: int) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "mlp",
                        "hyperparameters": {"hidden_units": [1024, 1024, 512]}},
        "trainingConfig": {"epochs": epochs, "batchSize": 1024, "learningRate": 0.001, "seed": 1,
                           "mixedPrecision": bool(gpu), "regularization": {"batchNorm": True},
                           "checkpoints": {"enabled": True, "saveLatest": True}},
        "dataConfig": {"trainDataset": parts[0].name, "validationDataset": parts[1].name,
                       "testDataset": parts[2].name, "labelColumn": "label"},
        "resources": {"gpu": gpu},
    }


def run_job(forge: Engine, parts, epochs: int, gpu: int, pause_at: int, scratch: Path) -> dict:
    job = forge.start_training(request(parts, epochs, gpu), job_id=f"mlp-gpu-{gpu}")
    points, paused_at = [], 0
    for point in forge.watch_metrics(job.name):
        points.append(point)
        if pause_at and point["epoch"] == pause_at and not paused_at:
            forge.trainer.pause(job.name)
            while forge.job(job.name).state not in ("PAUSED", "COMPLETED", "FAILED", "CANCELLED"):
                time.sleep(0.1)  # a pause asked for in the last epoch finds the job completed
            if forge.job(job.name).state == "PAUSED":
                paused_at = forge.job(job.name).checkpoint["epoch"]
                forge.trainer.resume(job.name)
    done = forge.wait(job.name, timeout=900)
    logs = [entry["message"] for entry in forge.logs(job.name)]
    result = {
        "state": done.state, "state_message": done.state_message, "paused_after_epoch": paused_at,
        "epochs": [p["epoch"] for p in points],
        "epoch_seconds": [round(p.get("epoch_seconds", 0.0), 3) for p in points],
        # What the worker measured at each epoch's end (NVML): absent without a GPU, never zero.
        "gpu_usage": [p.get("resource_usage", {}).get("gpu_usage") for p in points],
        "gpu_memory_mib": [round(p["resource_usage"]["gpu_memory"] / 2**20)
                           if p.get("resource_usage", {}).get("gpu_memory") else None for p in points],
        "device_logs": [m for m in logs if "cuda" in m.lower() or "gpu" in m.lower() or "resumed" in m][:6],
        "test_metrics": {k: round(v, 4) for k, v in (done.test_metrics or {}).items()},
    }
    if done.state == "COMPLETED":
        info = forge.export_model(job.name, "onnx", scratch / f"model-{gpu}.onnx")
        result["onnx_bytes"] = info["size_bytes"]
    else:
        result["error"] = done.error
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found = cuda_found()
    if not found["cuda"]:
        print(json.dumps({**found, "error": "no CUDA device visible to torch"}))
        return 2
    with engine_with_table(args.rows) as (forge, parts, scratch):
        found["gpu_job"] = run_job(forge, parts, args.epochs, 1, pause_at=2, scratch=scratch)
        found["cpu_job"] = run_job(forge, parts, 2, 0, pause_at=0, scratch=scratch)
    gpu_steady = min(found["gpu_job"]["epoch_seconds"][1:] or [0]) or None
    cpu_steady = min(found["cpu_job"]["epoch_seconds"]) or None
    if gpu_steady and cpu_steady:
        found["cpu_over_gpu_epoch_seconds"] = round(cpu_steady / gpu_steady, 2)
    text = json.dumps(found, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if found["gpu_job"]["state"] == found["cpu_job"]["state"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
