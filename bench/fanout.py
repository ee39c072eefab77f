"""fanout: many watchers of one running job, against a raw grpc.aio server pushing the same points.

A `forge-training serve` process trains a real SGD job on scikit-learn's bundled breast cancer
data, for more epochs than the run lasts: one metric point per epoch, about POINTS_PER_SECOND
of them a second (the rate the job really emitted is measured from its points' times and
reported). WATCHERS streams follow it with WatchTrainingMetrics(follow=true), one channel each
(separate users), split over CLIENT_PROCESSES processes of their own so that the watchers'
side is not what limits the run (each reports its CPU). Once every stream has had a point, the
window opens for WINDOW_SECONDS. For every point of the window and every watcher:

- latency, "worker to client": the time the watcher received the message minus the point's
  `time`, which the server's journal stamps when the worker's point arrives, before it is
  written (client and server share this machine's clock);
- misses: each watcher must receive every point of the window exactly once, in order (no gap,
  no repeat, no stream ended or failed), by DRAIN_SECONDS after the window closed.

The baseline is a bare grpc.aio server in its own process that pushes copies of the job's own
points (new sequence, stamped with the time it pushes them) at the rate the job emitted, to as
many streams from as many client processes running the same code: no database, no journal,
nothing but gRPC and a queue per stream (what queued while a stream's previous message was
being sent goes as one message, as the service does). The target is on the service alone: p99 latency
<= TARGET_P99_MS with no point missed by any watcher; `ratio` is the service's p99 over the
baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (ROOT, ResourceSampler, breast_cancer_frame, percentile, raw_process, result,  # noqa: E402
                      serve_process, sgd_spec, start_raw_server)

WATCHERS = 500
QUICK_WATCHERS = 10
CLIENT_PROCESSES = 2
WINDOW_SECONDS = 20.0
QUICK_WINDOW_SECONDS = 2.0
# How long after the window a watcher may take to receive its last point before it counts as missed.
DRAIN_SECONDS = 10.0
POINTS_PER_SECOND = 20
TARGET_P99_MS = 100.0
# Below this share of POINTS_PER_SECOND the job did not make the load the target is about.
MIN_RATE_SHARE = 0.75
# Windows measured at most while the job's rate under the watchers' load is below RETRY_BELOW_SHARE of
# POINTS_PER_SECOND (the last window counts, and it must reach MIN_RATE_SHARE).
RATE_ATTEMPTS = 3
RETRY_BELOW_SHARE = 0.9
# The calibration job: copies of the data, points skipped, then seconds of points timed.
CALIBRATION_COPIES = 16
# --quick trains on this many copies, uncalibrated.
QUICK_COPIES = 4
BREAST_CANCER_ROWS = 569
CALIBRATION_SKIP = 5
CALIBRATION_SECONDS = 1.5
JOB_EPOCHS = 10_000  # the most an SGD job may have; not reached: it is cancelled after the window
PROJECT = "projects/default"


# ---------------------------------------------------------------------------
# The watchers (CLIENT_PROCESSES processes of this module, run with --watch)
# ---------------------------------------------------------------------------


class Watcher:
    def __init__(self) -> None:
        self.last = 0
        self.gaps = 0
        self.repeats = 0
        self.error = ""
        self.ended = False
        # (sequence, receive time - point time) of every point received.
        self.received: list[tuple[int, float]] = []
        self.first_point = asyncio.Event()


async def _watch(stub, job: str, from_sequence: int, watcher: Watcher) -> None:
    import grpc

    from forge.training.v1 import trainer_service_pb2 as pb

    call = stub.WatchTrainingMetrics(pb.WatchTrainingMetricsRequest(name=job, from_sequence=from_sequence,
                                                                    follow=True))
    watcher.last = from_sequence
    try:
        async for message in call:
            now = time.time()
            for point in message.points:
                if point.sequence == watcher.last + 1:
                    pass
                elif point.sequence <= watcher.last:
                    watcher.repeats += 1
                else:
                    watcher.gaps += 1
                watcher.last = max(watcher.last, point.sequence)
                watcher.received.append((point.sequence, now - point.time.seconds - point.time.nanos * 1e-9))
            if message.points:
                watcher.first_point.set()
        watcher.ended = True
    except asyncio.CancelledError:
        call.cancel()
        raise
    except grpc.aio.AioRpcError as exc:
        watcher.error = f"{exc.code().name}: {exc.details()}"


async def _watchers_main(target: str, job: str, count: int, from_sequence: int, out: Path) -> None:
    """Open `count` streams, say "ready" once each has had a point, then follow the parent's
    commands on stdin: "start" opens the window, "window FIRST LAST" closes it; write the
    figures of points FIRST+1..LAST to `out` once every watcher has LAST (or DRAIN_SECONDS passed)."""
    import grpc
    import psutil

    from forge.training.v1 import trainer_service_pb2_grpc

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    channels = [grpc.aio.insecure_channel(target) for _ in range(count)]
    watchers = [Watcher() for _ in range(count)]
    tasks = [asyncio.create_task(_watch(trainer_service_pb2_grpc.TrainerServiceStub(ch), job, from_sequence, w))
             for ch, w in zip(channels, watchers)]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.first_point.wait() for w in watchers)), 120)
    except asyncio.TimeoutError:
        waiting = [w for w in watchers if not w.first_point.is_set()]
        raise SystemExit(f"{len(waiting)} of {count} streams had no point in 120 s: "
                         f"{sorted({w.error or 'no error' for w in waiting})[:3]}") from None
    print("ready", flush=True)
    me = psutil.Process()
    command = (await reader.readline()).decode().split()
    assert command == ["start"], command
    cpu_start, wall_start = sum(me.cpu_times()[:2]), time.monotonic()
    command = (await reader.readline()).decode().split()
    cpu_cores = (sum(me.cpu_times()[:2]) - cpu_start) / (time.monotonic() - wall_start)
    first, last = int(command[1]), int(command[2])
    deadline = loop.time() + DRAIN_SECONDS
    while loop.time() < deadline and any(w.last < last and not w.error and not w.ended for w in watchers):
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(ch.close() for ch in channels))
    latencies = [lat for w in watchers for seq, lat in w.received if first < seq <= last]
    missed = [w for w in watchers
              if w.gaps or w.repeats or w.error or w.last < last
              or sum(1 for seq, _ in w.received if first < seq <= last) != last - first]
    out.write_text(json.dumps({
        "watchers": count, "latencies": latencies, "cpu_cores": round(cpu_cores, 3),
        "missed_watchers": len(missed), "gaps": sum(w.gaps for w in watchers),
        "repeats": sum(w.repeats for w in watchers), "short": sum(1 for w in watchers if w.last < last),
        "errors": sorted({w.error for w in watchers if w.error})[:5],
        "ended_early": sum(1 for w in watchers if w.ended),
    }))


class WatcherProcesses:
    """CLIENT_PROCESSES watcher processes sharing `count` streams."""

    def __init__(self, scratch: Path, label: str, target: str, job: str, count: int, from_sequence: int):
        self.outs = [scratch / f"{label}-watchers-{i}.json" for i in range(CLIENT_PROCESSES)]
        shares = [count // CLIENT_PROCESSES + (1 if i < count % CLIENT_PROCESSES else 0) for i in range(CLIENT_PROCESSES)]
        self.processes = [
            subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--watch", target, "--job", job,
                              "--count", str(share), "--from-sequence", str(from_sequence), "--out", str(out)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, text=True)
            for share, out in zip(shares, self.outs)]

    def ready(self) -> None:
        for process in self.processes:
            line = process.stdout.readline().strip()
            if line != "ready":
                process.wait(30)
                raise RuntimeError(f"a watcher process did not get ready (exit {process.returncode})")

    def send(self, line: str) -> None:
        for process in self.processes:
            process.stdin.write(line + "\n")
            process.stdin.flush()

    def results(self) -> list[dict]:
        for process in self.processes:
            if process.wait(DRAIN_SECONDS + 60) != 0:
                raise RuntimeError(f"a watcher process failed (exit {process.returncode})")
        return [json.loads(out.read_text()) for out in self.outs]

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


# ---------------------------------------------------------------------------
# The baseline: raw grpc.aio pushing the same points
# ---------------------------------------------------------------------------


async def _serve_raw(points_file: Path, per_second: float) -> None:
    import grpc

    from forge.training.v1 import common_pb2, metrics_pb2, trainer_service_pb2 as pb

    templates = list(pb.WatchTrainingMetricsResponse.FromString(points_file.read_bytes()).points)
    sent: list[pb.WatchTrainingMetricsResponse] = []  # sent[i] holds sequence i + 1
    streams: set[asyncio.Queue] = set()

    async def emit() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            point = metrics_pb2.TrainingMetrics()
            point.CopyFrom(templates[len(sent) % len(templates)])
            point.sequence = len(sent) + 1
            point.time.GetCurrentTime()
            message = pb.WatchTrainingMetricsResponse(points=[point], job_state=common_pb2.JOB_STATE_RUNNING)
            sent.append(message)
            for queue in streams:
                queue.put_nowait(message)
            await asyncio.sleep(max(0.0, started + len(sent) / per_second - loop.time()))

    async def watch(request, context):
        queue: asyncio.Queue = asyncio.Queue()
        backlog = sent[request.from_sequence:]  # and everything after it through the queue: no await between
        streams.add(queue)
        try:
            if backlog:  # the history in one message, as the service reads it in pages
                yield pb.WatchTrainingMetricsResponse(points=[m.points[0] for m in backlog],
                                                      job_state=common_pb2.JOB_STATE_RUNNING)
            while True:
                # What queued while the previous message was being sent goes as one message, as
                # the service batches what a watcher has not had yet.
                points = [*(await queue.get()).points]
                while not queue.empty():
                    points.extend(queue.get_nowait().points)
                yield pb.WatchTrainingMetricsResponse(points=points, job_state=common_pb2.JOB_STATE_RUNNING)
        finally:
            streams.discard(queue)

    async def latest(request, context):
        response = pb.GetTrainingMetricsResponse()
        if sent:
            response.latest.CopyFrom(sent[-1].points[0])
        return response

    server = await start_raw_server({
        "WatchTrainingMetrics": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=pb.WatchTrainingMetricsRequest.FromString,
            response_serializer=pb.WatchTrainingMetricsResponse.SerializeToString),
        "GetTrainingMetrics": grpc.unary_unary_rpc_method_handler(
            latest, request_deserializer=pb.GetTrainingMetricsRequest.FromString,
            response_serializer=pb.GetTrainingMetricsResponse.SerializeToString)})
    emitter = asyncio.create_task(emit())
    # Runs until the process is killed; an emitter that failed ends the process, which says why.
    await asyncio.wait([emitter, asyncio.create_task(server.wait_for_termination())],
                       return_when=asyncio.FIRST_COMPLETED)
    emitter.result()


def raw_server(points_file: Path, per_second: float, log_path: Path):
    """The baseline server as a process of its own; yields it and its port."""
    return raw_process([str(Path(__file__).resolve()), "--serve-raw", str(points_file), "--per-second",
                        str(per_second)], log_path)


# ---------------------------------------------------------------------------
# One measurement, on either server
# ---------------------------------------------------------------------------


def _latest(stub, job: str) -> tuple[int, float]:
    """The newest point's sequence and time (0, 0.0 before the first)."""
    from forge.training.v1 import trainer_service_pb2 as pb

    latest = stub.GetTrainingMetrics(pb.GetTrainingMetricsRequest(name=job), timeout=30).latest
    return latest.sequence, latest.time.seconds + latest.time.nanos * 1e-9


def measure(scratch: Path, label: str, target: str, job: str, watchers: int, window: float) -> dict:
    """WATCHERS streams from the newest point on; the figures of the points of one window."""
    import grpc

    from forge.training.v1 import trainer_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = trainer_service_pb2_grpc.TrainerServiceStub(channel)
        start_sequence, _ = _latest(stub, job)
        processes = WatcherProcesses(scratch, label, target, job, watchers, start_sequence)
        try:
            started = time.monotonic()
            processes.ready()
            connect_seconds = time.monotonic() - started
            first, first_time = _latest(stub, job)
            processes.send("start")
            time.sleep(window)
            last, last_time = _latest(stub, job)
            processes.send(f"window {first} {last}")
            parts = processes.results()
        finally:
            processes.kill()
    latencies = sorted(lat for part in parts for lat in part["latencies"])
    points = last - first
    return {
        "watchers": watchers, "window_seconds": window, "points": points,
        # From the points' own times: the rate the job (or the raw server) really emitted.
        "points_per_second": round(points / (last_time - first_time), 2) if last_time > first_time else 0.0,
        "deliveries": len(latencies), "expected_deliveries": points * watchers,
        "latency_ms": {"p50": round(percentile(latencies, 0.5) * 1000, 2),
                       "p99": round(percentile(latencies, 0.99) * 1000, 2),
                       "max": round((latencies[-1] if latencies else 0.0) * 1000, 2),
                       "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0.0},
        "missed_watchers": sum(p["missed_watchers"] for p in parts),
        "gaps": sum(p["gaps"] for p in parts), "repeats": sum(p["repeats"] for p in parts),
        "short_watchers": sum(p["short"] for p in parts), "ended_early": sum(p["ended_early"] for p in parts),
        "errors": sorted({e for p in parts for e in p["errors"]}),
        "client_processes": len(parts), "client_cpu_cores": [p["cpu_cores"] for p in parts],
        "connect_seconds": round(connect_seconds, 2),
    }


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def _upload(client, scratch: Path, copies: int) -> str:
    """scikit-learn's breast cancer data, its rows `copies` times over; the dataset's name."""
    import pandas as pd

    csv = scratch / f"breast_cancer_x{copies}.csv"
    pd.concat([breast_cancer_frame()] * copies, ignore_index=True).to_csv(csv, index=False)
    return client.upload_dataset(csv, dataset_id=f"bc-x{copies}", label_column="target").name


def _seconds(point) -> float:
    return point.time.seconds + point.time.nanos * 1e-9


def _rate(client, job: str, seconds: float) -> tuple[float, float]:
    """A running job's points per second over `seconds` of points (after its first few, which
    are slower), and the median of their epoch_seconds."""
    deadline = time.monotonic() + 300
    while True:
        points = client.metric_history(job)[CALIBRATION_SKIP:]
        if len(points) >= 2 and _seconds(points[-1]) - _seconds(points[0]) >= seconds:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{job} recorded {len(points)} points in 300 s")
        client.wait(job, states=["running"], timeout=300)  # raises if it failed instead
        time.sleep(0.2)
    interval = (_seconds(points[-1]) - _seconds(points[0])) / (len(points) - 1)
    return 1 / interval, statistics.median(p.epoch_seconds for p in points)


def start_job(target: str, scratch: Path, calibrate: bool) -> tuple[str, dict]:
    """Start the watched SGD job with the rows that make it emit about POINTS_PER_SECOND points a
    second on this machine now; its name and how that was found. Without `calibrate` (--quick)
    it trains on QUICK_COPIES copies of the data, however fast that is.

    A first job on CALIBRATION_COPIES copies of the data gives the interval between its points
    and the part of it the epoch's own work took (epoch_seconds: one pass of partial_fit over
    the rows, mostly); the rest (reporting, sampling resources) does not grow with the data. The
    watched job gets the copies that stretch the work to fill 1/POINTS_PER_SECOND."""
    from forge.training import Client

    found: dict = {}
    with Client(target) as client:
        copies = QUICK_COPIES
        if calibrate:
            probe = client.start_training(sgd_spec(_upload(client, scratch, CALIBRATION_COPIES), JOB_EPOCHS),
                                          training_job_id="calibration")
            rate, work = _rate(client, probe.name, CALIBRATION_SECONDS)
            client.cancel(probe.name, wait=True)
            overhead = max(0.0, 1 / rate - work)
            copies = max(1, round(CALIBRATION_COPIES * (1 / POINTS_PER_SECOND - overhead) / work))
            found = {f"points_per_second_with_{CALIBRATION_COPIES}_copies": round(rate, 1),
                     "epoch_seconds": round(work, 4)}
    return start_watched(target, scratch, copies, "watched"), {**found, "copies": copies}


def start_watched(target: str, scratch: Path, copies: int, job_id: str) -> str:
    """The watched SGD job on `copies` copies of the data, once it runs and has recorded points."""
    from forge.training import Client

    with Client(target) as client:
        job = client.start_training(sgd_spec(_upload(client, scratch, copies), JOB_EPOCHS), training_job_id=job_id)
        _rate(client, job.name, 0.0)
    return job.name


def run(scratch: Path, quick: bool) -> list[dict]:
    from forge.training import Client
    from forge.training.v1 import trainer_service_pb2 as pb

    watchers = QUICK_WATCHERS if quick else WATCHERS
    window = QUICK_WINDOW_SECONDS if quick else WINDOW_SECONDS
    with serve_process(scratch / "data", scratch / "server.log", []) as (process, port):
        target = f"127.0.0.1:{port}"
        job, calibration = start_job(target, scratch, calibrate=not quick)
        # The calibration job ran alone; under 500 watchers the server and the clients take CPU
        # from the job and it emits more slowly. A window whose rate falls short of the load the
        # target is about is measured again with a job on fewer rows (in proportion).
        tries = []
        for attempt in range(1 if quick else RATE_ATTEMPTS):
            if attempt:
                copies = max(1, round(tries[-1]["copies"] * tries[-1]["points_per_second"] / POINTS_PER_SECOND))
                with Client(target) as client:
                    client.cancel(job, wait=True)
                job = start_watched(target, scratch, copies, f"watched-{attempt + 1}")
                calibration["copies"] = copies
            with ResourceSampler(process.pid) as sampler:
                service = measure(scratch, "service", target, job, watchers, window)
            tries.append({"copies": calibration["copies"], "points_per_second": service["points_per_second"]})
            if service["points_per_second"] >= RETRY_BELOW_SHARE * POINTS_PER_SECOND:
                break
        calibration.update(rows=calibration["copies"] * BREAST_CANCER_ROWS, windows=tries)
        resources = sampler.report()
        with Client(target) as client:
            templates = client.metric_history(job)[:100]
            client.cancel(job, wait=True)
    points_file = scratch / "points.pb"
    points_file.write_bytes(pb.WatchTrainingMetricsResponse(points=templates).SerializeToString())
    rate = service["points_per_second"] or POINTS_PER_SECOND
    with raw_server(points_file, rate, scratch / "raw-server.log") as (raw_process, raw_port):
        import psutil

        raw = psutil.Process(raw_process.pid)
        cpu_start, wall_start = sum(raw.cpu_times()[:2]), time.monotonic()
        baseline = measure(scratch, "raw", f"127.0.0.1:{raw_port}", "raw", watchers, window)
        baseline["server_cpu_cores"] = round((sum(raw.cpu_times()[:2]) - cpu_start) / (time.monotonic() - wall_start), 2)
    service.update(what=f"{watchers} WatchTrainingMetrics(follow=true) streams of one SGD job of a "
                        "`forge-training serve` process (SQLite)",
                   server=resources["server"], machine=resources["machine"], calibration=calibration)
    baseline["what"] = (f"a bare grpc.aio server in its own process pushing copies of the job's points at "
                        f"{rate:.1f}/s to {watchers} streams")
    p99 = service["latency_ms"]["p99"]
    complete = service["missed_watchers"] == 0 and service["deliveries"] == service["expected_deliveries"] > 0
    loaded = service["points_per_second"] >= MIN_RATE_SHARE * POINTS_PER_SECOND
    ratio = p99 / baseline["latency_ms"]["p99"] if baseline["latency_ms"]["p99"] else None
    return [result("fanout", service, baseline, ratio,
                   f"p99 worker-to-client latency <= {TARGET_P99_MS:.0f} ms with {watchers} watchers of a job "
                   f"emitting ~{POINTS_PER_SECOND} points/s; no watcher misses a point",
                   p99 <= TARGET_P99_MS and complete and loaded,
                   no_point_missed=complete, emission_rate_ok=loaded)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-raw", type=Path, metavar="POINTS_FILE", help="run the baseline server (internal)")
    parser.add_argument("--per-second", type=float, default=POINTS_PER_SECOND)
    parser.add_argument("--watch", metavar="TARGET", help="run watchers (internal)")
    parser.add_argument("--job")
    parser.add_argument("--count", type=int)
    parser.add_argument("--from-sequence", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.serve_raw:
        asyncio.run(_serve_raw(args.serve_raw, args.per_second))
        return 0
    if args.watch:
        asyncio.run(_watchers_main(args.watch, args.job, args.count, args.from_sequence, args.out))
        return 0
    parser.error("run it through bench/run.py --only fanout")
    return 2


if __name__ == "__main__":
    sys.exit(main())
