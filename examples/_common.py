"""What every example shares: connecting, uploading a DataFrame, training to the end.

Each example is a module with `run(client, small=False) -> dict` (the numbers it reports,
which the integration tests check) and a command line that talks to a running server:

    make serve                                  # in one terminal
    .venv/bin/python examples/fraud_detection.py  # in another (--target host:port)
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))

from forge.training import Client, common_pb2  # noqa: E402


def upload_frame(client: Client, frame, dataset_id: str, label_column: str = ""):
    """Upload a pandas DataFrame as Parquet (types survive, unlike CSV); replaces an earlier run's copy."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    _delete_if_present(client, dataset_id)
    return client.upload_dataset(buffer.getvalue(), format="parquet", dataset_id=dataset_id,
                                 label_column=label_column)


def _delete_if_present(client: Client, dataset_id: str) -> None:
    from forge.training import ForgeTrainingError

    for suffix in ("", "-train", "-validation", "-test"):
        try:
            client.delete_dataset(dataset_id + suffix)
        except ForgeTrainingError:
            pass


def train(client: Client, spec: dict, *, verbose: bool = True):
    """Start a job, print its metric points as they arrive, and return the finished job."""
    job = client.start_training(spec)
    for point in client.watch_metrics(job.name):
        if verbose:
            shown = {k: round(getattr(point, k), 4) for k in ("training_loss", "validation_loss", "accuracy",
                                                               "f1_score", "rmse") if point.HasField(k)}
            print(f"  epoch {point.epoch}/{point.total_epochs} {shown}")
    done = client.wait(job.name, timeout=600)
    if done.state != common_pb2.JOB_STATE_COMPLETED:
        raise RuntimeError(f"{done.name} ended {common_pb2.JobState.Name(done.state)}: {done.state_message}")
    return done


def main(run: Callable[..., dict], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--target", default="127.0.0.1:50051", help="the server (default %(default)s)")
    parser.add_argument("--small", action="store_true", help="a quick run on less data")
    args = parser.parse_args()
    with Client(args.target) as client:
        results = run(client, small=args.small)
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
