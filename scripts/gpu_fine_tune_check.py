"""Fine-tuning and cross-validation on a GPU, through the engine as a user's jobs run: a PyTorch
network trained on the GPU, then a job that fine-tunes it on the GPU with its first layer
frozen, evaluated by 2 folds before the final model, paused in a fold and resumed. Checks the
frozen layer left exactly as the parent's, every fold started from the parent, and the device
each job trained on. For machines with a GPU; tests never need one.

Measured on an NVIDIA H200 (torch 2.11+cu130): every check passed; 100,000 rows, MLP 512-256, the
child's first epoch (validation loss 0.219) started where its parent ended (0.266 after its
first epoch), its frozen first layer byte-identical to the parent's after 9 epochs.

    .venv/bin/python scripts/gpu_fine_tune_check.py [--rows 100000] [--out result.json]

Prints one JSON object (also written to --out). Exit status 2: no CUDA device visible to torch;
1: a check failed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Engine  # noqa: E402
from scripts.gpu_job_check import cuda_found, engine_with_table  # noqa: E402


def job_request(parts, epochs: int, **model) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "mlp",
                        "hyperparameters": {"hidden_units": [512, 256]}, **model},
        "trainingConfig": {"epochs": epochs, "batchSize": 1024, "learningRate": 0.001, "seed": 1,
                           "checkpoints": {"enabled": True}},
        "dataConfig": {"trainDataset": parts[0].name, "validationDataset": parts[1].name,
                       "testDataset": parts[2].name, "labelColumn": "label"},
        "resources": {"gpu": 1},
    }


def weights(forge: Engine, job: str, scratch: Path) -> dict:
    import torch

    path = scratch / f"{job.rsplit('/', 1)[-1]}.pt"
    forge.export_model(job, "torch", path)  # checked against its sha256 as it is written
    return torch.load(io.BytesIO(path.read_bytes()), weights_only=True)["state_dict"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    found = cuda_found()
    if not found["cuda"]:
        print(json.dumps({**found, "error": "no CUDA device visible to torch"}))
        return 2
    checks: dict[str, bool] = {}
    with engine_with_table(args.rows) as (forge, parts, scratch):
        started = time.monotonic()
        parent = forge.wait(forge.start_training(job_request(parts, 3), job_id="gpu-parent").name, timeout=600)
        found["parent"] = {"state": parent.state, "seconds": round(time.monotonic() - started, 1),
                           "test_metrics": parent.test_metrics}
        request = job_request(parts, 3, pretrainedPath="gpu-parent", frozenLayers=["1"])
        request["validation"] = {"crossValidation": {"enabled": True, "folds": 2}}
        child = forge.start_training(request, job_id="gpu-child")
        paused = 0
        for point in forge.watch_metrics(child.name):
            if point["epoch"] == 4 and not paused:  # in fold 2
                forge.trainer.pause(child.name)
                while forge.job(child.name).state not in ("PAUSED", "COMPLETED", "FAILED"):
                    time.sleep(0.1)
                paused = forge.job(child.name).checkpoint["epoch"]
                forge.trainer.resume(child.name)
        child = forge.wait(child.name, timeout=600)
        logs = [e["message"] for e in forge.logs(child.name)]
        history = list(forge.watch_metrics(child.name, follow_job=False))
        parent_points = list(forge.watch_metrics("gpu-parent", follow_job=False))
        found["child"] = {
            "state": child.state, "state_message": child.state_message, "paused_after_epoch": paused,
            "epochs": [p["epoch"] for p in history], "folds": [int(p["extra"].get("cv_fold", -1)) for p in history],
            "cross_validation": (child.model_info or {}).get("cross_validation", {}).get("mean"),
            "device_logs": [m for m in logs if "cuda" in m or "frozen" in m or "fine-tuning" in m][:8],
            "first_validation_loss": history[0].get("validation_loss") if history else None,
            "parent_first_validation_loss": parent_points[0].get("validation_loss"),
            "test_metrics": child.test_metrics,
        }
        if parent.state == child.state == "COMPLETED":
            mine, theirs = weights(forge, child.name, scratch), weights(forge, parent.name, scratch)
            checks["frozen layer is the parent's"] = bool(torch.equal(mine["1.weight"], theirs["1.weight"]))
            checks["other layers trained"] = not bool(torch.equal(mine["3.weight"], theirs["3.weight"]))
        checks["both completed"] = parent.state == child.state == "COMPLETED"
        checks["trained on cuda"] = any("cuda" in m for m in logs)
        checks["every epoch once"] = found["child"]["epochs"] == list(range(1, 10))
        checks["folds then final"] = found["child"]["folds"] == [1, 1, 1, 2, 2, 2, 0, 0, 0]
        # Each fold starts from the parent: its first epoch is better than the parent's first.
        fold_starts = [history[i].get("validation_loss") for i in (0, 3, 6)] if len(history) == 9 else []
        checks["every phase starts from the parent"] = bool(fold_starts) and all(
            v < parent_points[0]["validation_loss"] for v in fold_starts)
    found["checks"] = checks
    text = json.dumps(found, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
