"""replay: a job's whole metric history read with WatchTrainingMetrics, against raw grpc.aio
streaming the same points.

The job is real: a `forge-training serve` process trains a few SGD epochs on scikit-learn's
bundled breast cancer data. A real job of 100k epochs would take hours, so its history is then
grown to REPLAY_POINTS points through the engine's own Journal API (`Journal.append`,
what the server calls for every epoch a worker reports), with the server stopped, each point a
copy of one of the job's real points under the next epoch number. The server is started again
on that data: what is measured is the read path only, `WatchTrainingMetrics(from_sequence=0,
follow=false)`, the whole history in one stream, as a client replaying a job's curves does.

The baseline is a bare grpc.aio server in its own process holding the same points (exactly
those the service sent, as TrainingMetrics messages in memory) that streams them as
WatchTrainingMetricsResponse messages of as many points as the service's largest message held:
no database, no conversion, nothing but gRPC. Both are read by the same client code in this
process (a blocking stub that checks every sequence), alternating, several times (medians).
The ratio is the service's points/s over the baseline's; `cpu_ratio`, beside it, is the baseline
server's CPU seconds per read over the service's, which other programs on the machine do not sway.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (ResourceSampler, breast_cancer_frame, raw_process, result, serve_process,  # noqa: E402
                      sgd_spec, start_raw_server)

REPLAY_POINTS = 100_000
QUICK_POINTS = 2_000
RUNS = 3
QUICK_RUNS = 1
TARGET_RATIO = 0.5
REAL_EPOCHS = 3
# Points written per Journal.append call while the history is grown (one transaction each).
WRITE_BATCH = 5_000


# ---------------------------------------------------------------------------
# The job and its history
# ---------------------------------------------------------------------------


def train_real_job(target: str, scratch: Path) -> tuple[str, list]:
    """A real SGD job of REAL_EPOCHS epochs, trained to completion; its name and metric points."""
    from forge.training import Client

    csv = scratch / "breast_cancer.csv"
    breast_cancer_frame().to_csv(csv, index=False)
    with Client(target) as client:
        dataset = client.upload_dataset(csv, dataset_id="bc-replay", label_column="target")
        job = client.start_training(sgd_spec(dataset.name, REAL_EPOCHS), training_job_id="replayed")
        client.wait(job.name, states="completed", timeout=300)  # raises if it ended otherwise
        points = list(client.watch_metrics(job.name, follow=False))
    if len(points) != REAL_EPOCHS:
        raise RuntimeError(f"the real job recorded {len(points)} points, not {REAL_EPOCHS}")
    return job.name, points


def grow_history(data_dir: Path, job: str, real_points: list, total: int) -> float:
    """Append copies of the job's real points through the Journal until it has `total`; seconds taken.

    The server is stopped: the journal reads the last sequence back from the database, as a
    restarted server does, and continues it."""
    from google.protobuf import json_format

    from engine.monitor.bus import Bus
    from engine.monitor.journal import Journal
    from engine.store.database import Database
    from server import convert

    # The worker's own form of a point: TrainingMetrics fields, without the journal's sequence and time.
    templates = []
    for point in real_points:
        values = json_format.MessageToDict(point, preserving_proto_field_name=True)
        values.pop("sequence", None)
        values.pop("time", None)
        values["resource_usage"]["memory_usage"] = int(values["resource_usage"]["memory_usage"])
        values["resource_usage"]["memory_total"] = int(values["resource_usage"]["memory_total"])
        templates.append(values)
    db = Database(f"sqlite:///{(data_dir / 'forge.db').resolve()}")
    journal = Journal(db, Bus())  # no TensorBoard: only the metric history is read back
    journal.encode_metric = convert.metric_wire  # as the server's journal stores each point
    started = time.perf_counter()
    epoch = len(real_points)
    try:
        while epoch < total:
            batch = []
            for _ in range(min(WRITE_BATCH, total - epoch)):
                epoch += 1
                batch.append({**templates[epoch % len(templates)], "epoch": epoch, "total_epochs": total,
                              "progress": epoch / total})
            journal.append(job, points=batch)
    finally:
        db.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------
# The baseline: raw grpc.aio
# ---------------------------------------------------------------------------


async def _serve_raw(points_file: Path, batch: int) -> None:
    import grpc

    from forge.training.v1 import common_pb2, trainer_service_pb2 as pb

    points = pb.WatchTrainingMetricsResponse.FromString(points_file.read_bytes()).points

    async def watch(request, context):
        for start in range(0, len(points), batch):
            yield pb.WatchTrainingMetricsResponse(points=points[start:start + batch],
                                                  job_state=common_pb2.JOB_STATE_COMPLETED)

    server = await start_raw_server({"WatchTrainingMetrics": grpc.unary_stream_rpc_method_handler(
        watch, request_deserializer=pb.WatchTrainingMetricsRequest.FromString,
        response_serializer=pb.WatchTrainingMetricsResponse.SerializeToString)})
    await server.wait_for_termination()


def raw_server(points_file: Path, batch: int, log_path: Path):
    """The baseline server as a process of its own; yields it and its port."""
    return raw_process([str(Path(__file__).resolve()), "--serve-raw", str(points_file), "--batch", str(batch)],
                       log_path)


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


class Replay:
    """One whole-history read: seconds, messages, the largest message's points, and the points
    themselves when asked to keep them (to hand the baseline exactly what the service sent)."""

    def __init__(self, stub, job: str, total: int, server_pid: int):
        import psutil

        self.stub, self.job, self.total = stub, job, total
        self.server = psutil.Process(server_pid)

    def _server_cpu(self) -> float:
        times = self.server.cpu_times()
        return times.user + times.system

    def read(self, keep: bool = False) -> dict:
        from forge.training.v1 import trainer_service_pb2 as pb

        kept = pb.WatchTrainingMetricsResponse()
        cpu = self._server_cpu()
        started = time.perf_counter()
        messages = largest = last = 0
        for message in self.stub.WatchTrainingMetrics(
                pb.WatchTrainingMetricsRequest(name=self.job, from_sequence=0, follow=False)):
            messages += 1
            largest = max(largest, len(message.points))
            for point in message.points:
                if point.sequence != last + 1:
                    raise RuntimeError(f"{self.job}: sequence {point.sequence} after {last}")
                last = point.sequence
            if keep:
                kept.points.extend(message.points)
        seconds = time.perf_counter() - started
        cpu = self._server_cpu() - cpu
        if last != self.total:
            raise RuntimeError(f"{self.job}: the stream ended at sequence {last}, not {self.total}")
        return {"seconds": seconds, "server_cpu_seconds": cpu, "messages": messages, "largest_message_points": largest,
                "kept": kept}


def _rate(total: int, reads: list[dict]) -> dict:
    seconds = [r["seconds"] for r in reads]
    median = statistics.median(seconds)
    # The server process's own CPU time per read: what the read cost it, however busy the
    # machine was (the wall-clock figures also count the time other programs had the CPUs).
    cpu = statistics.median(r["server_cpu_seconds"] for r in reads)
    return {"points_per_second": round(total / median), "median_seconds": round(median, 3),
            "seconds": [round(s, 3) for s in seconds], "server_cpu_seconds": round(cpu, 3),
            "server_cpu_microseconds_per_point": round(cpu / total * 1e6, 2),
            "messages": reads[0]["messages"], "largest_message_points": reads[0]["largest_message_points"]}


def run(scratch: Path, quick: bool) -> list[dict]:
    import grpc

    from forge.training.v1 import trainer_service_pb2_grpc

    total = QUICK_POINTS if quick else REPLAY_POINTS
    runs = QUICK_RUNS if quick else RUNS
    data_dir = scratch / "data"
    setup: dict = {}
    started = time.monotonic()
    with serve_process(data_dir, scratch / "server-setup.log", []) as (_, port):
        job, real_points = train_real_job(f"127.0.0.1:{port}", scratch)
    setup["real_job_seconds"] = round(time.monotonic() - started, 1)
    setup["journal_write_seconds"] = round(grow_history(data_dir, job, real_points, total), 1)
    setup["journal_write_points_per_second"] = round((total - REAL_EPOCHS) / setup["journal_write_seconds"])

    service_reads: list[dict] = []
    raw_reads: list[dict] = []
    with serve_process(data_dir, scratch / "server.log", []) as (process, port), \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        service = Replay(trainer_service_pb2_grpc.TrainerServiceStub(channel), job, total, process.pid)
        # Untimed: connects the channel and hands the baseline the very points the service sends.
        first = service.read(keep=True)
        points_file = scratch / "points.pb"
        points_file.write_bytes(first["kept"].SerializeToString())
        batch = first["largest_message_points"]
        with raw_server(points_file, batch, scratch / "raw-server.log") as (raw_process, raw_port), \
                grpc.insecure_channel(f"127.0.0.1:{raw_port}") as raw_channel:
            raw = Replay(trainer_service_pb2_grpc.TrainerServiceStub(raw_channel), "raw", total, raw_process.pid)
            raw.read()
            with ResourceSampler(process.pid, interval=0.2) as sampler:
                for _ in range(runs):
                    service_reads.append(service.read())
                    raw_reads.append(raw.read())
            resources = sampler.report()
    measured = {"what": f"WatchTrainingMetrics(from_sequence=0, follow=false) of a job with {total} metric points, "
                        "from a `forge-training serve` process (SQLite)",
                "points": total, **_rate(total, service_reads),
                "server": resources["server"], "machine": resources["machine"], "setup": setup}
    base = {"what": f"a bare grpc.aio server in its own process streaming the same {total} points from memory, "
                    f"{batch} per WatchTrainingMetricsResponse",
            "points": total, **_rate(total, raw_reads)}
    ratio = measured["points_per_second"] / base["points_per_second"]
    # Clock ticks: a quick run may measure 0 on either side, and a ratio of that says nothing.
    both = base["server_cpu_seconds"] and measured["server_cpu_seconds"]
    cpu_ratio = base["server_cpu_seconds"] / measured["server_cpu_seconds"] if both else None
    return [result("replay", measured, base, ratio, f"points/s >= {TARGET_RATIO} x raw grpc.aio", ratio >= TARGET_RATIO,
                   runs=runs, cpu_ratio=None if cpu_ratio is None else round(cpu_ratio, 4))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-raw", type=Path, metavar="POINTS_FILE", help="run the baseline server (internal)")
    parser.add_argument("--batch", type=int, default=1000, help="points per message of the baseline server")
    args = parser.parse_args(argv)
    if args.serve_raw:
        asyncio.run(_serve_raw(args.serve_raw, args.batch))
        return 0
    parser.error("run it through bench/run.py --only replay")
    return 2


if __name__ == "__main__":
    sys.exit(main())
