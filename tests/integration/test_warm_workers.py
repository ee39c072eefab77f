"""Warm workers (engine/jobs/supervisor.py): jobs start in idle processes forked ahead from the
warm template, a process that imported the frameworks once; each runs one job and is replaced.
The pool stops with the server, nothing of it outlives a killed server, and a job outlives its
template. `--warm-workers 0` turns it off: every job gets a freshly spawned process."""

from __future__ import annotations

import argparse
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest

from forge.training import Client, common_pb2


def _spec(dataset: str, epochs: int) -> dict:
    return {"modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": 4},
            "dataConfig": {"trainDataset": dataset, "labelColumn": "target"}}


def _worker_of(client: Client, job: str, timeout: float = 120) -> int:
    """The pid every worker logs first: "worker 1234 started (attempt 1)"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in client.stream_logs(job, follow=False):
            found = re.match(r"worker (\d+) started", entry.message)
            if found:
                return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no worker of {job} started within {timeout:g} s")


def _template_and_idle(server_pid: int, idle: int, timeout: float = 180) -> tuple[psutil.Process, list[int]]:
    """The server's warm template (a child running multiprocessing's fork server) once it has
    `idle` forks, and their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children():
            try:
                if any("multiprocessing.forkserver" in part for part in child.cmdline()):
                    forks = [p.pid for p in child.children()]
                    if len(forks) >= idle:
                        return child, forks
            except psutil.Error:
                pass
        time.sleep(0.1)
    raise AssertionError(f"no warm template with {idle} idle workers within {timeout:g} s")


def _idle_pids(running, count: int, timeout: float = 180) -> list[int]:
    pool = running.engine.trainer.executor.warm_pool
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = [worker.process.pid for worker in pool.idle() if worker.process.is_alive()]
        if len(idle) >= count:
            return idle
        time.sleep(0.05)
    raise AssertionError(f"the pool did not hold {count} idle warm workers within {timeout:g} s")


def _gone(pids: list[int], timeout: float) -> list[int]:
    """Of `pids`, those still running after `timeout` seconds (zombies count as gone)."""
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return []
        time.sleep(0.1)
    return [p.pid for p in alive]


def test_each_job_runs_in_its_own_warm_worker_at_the_workers_niceness(start_server, tmp_path, breast_cancer_csv):
    running = start_server(tmp_path / "warm", max_concurrent_jobs=2)
    with Client(running.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-warm", label_column="target")
        idle = _idle_pids(running, 2)
        template = psutil.Process(idle[0]).parent()
        assert any("multiprocessing.forkserver" in part for part in template.cmdline())
        assert template.nice() == os.nice(0) + 10  # its imports never compete with the server

        first = client.start_training(_spec(data.name, 3000))
        pid = _worker_of(client, first.name)
        assert pid in idle  # forked before the job existed: nothing to import
        next(iter(client.watch_metrics(first.name)))
        assert psutil.Process(pid).nice() == os.nice(0) + 10
        client.cancel(first.name, wait=True, timeout=60)

        second = client.wait(client.start_training(_spec(data.name, 2)).name, timeout=120)
        assert second.state == common_pb2.JOB_STATE_COMPLETED, second.state_message
        assert _worker_of(client, second.name) not in (pid, template.pid)
        # Used once: the first job's worker is gone and the pool holds new forks in its place.
        assert _gone([pid], 10) == []
        assert pid not in _idle_pids(running, 2)

    running.stop()  # idle warm workers stop with the server
    assert _gone(idle + _idle_pids(running, 0, timeout=1), 10) == []


def test_a_killed_server_leaves_no_warm_process_behind(serve_processes, tmp_path, breast_cancer_csv):
    process, port = serve_processes(tmp_path / "data")
    template, idle = _template_and_idle(process.pid, 2)
    with Client(f"127.0.0.1:{port}") as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-kill", label_column="target")
        job = client.start_training(_spec(data.name, 10_000))
        next(iter(client.watch_metrics(job.name)))
        worker = _worker_of(client, job.name)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    # Idle workers see their pipe close at once; the training one at the end of its epoch; the
    # template once the server and every worker forked from it are gone.
    assert _gone([worker, template.pid, *idle], 30) == []


def test_a_job_outlives_its_warm_template_and_the_pool_recovers(start_server, tmp_path, breast_cancer_csv):
    running = start_server(tmp_path / "orphan", max_concurrent_jobs=2)
    with Client(running.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-orphan", label_column="target")
        idle = _idle_pids(running, 2)
        template = psutil.Process(idle[0]).parent()
        job = client.start_training(_spec(data.name, 200))
        next(iter(client.watch_metrics(job.name)))
        template.kill()  # e.g. the kernel's OOM killer
        done = client.wait(job.name, timeout=120)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        assert done.current_epoch == 200
        # The pool drops the idle forks of the dead template and forks new ones from a new template.
        again = client.wait(client.start_training(_spec(data.name, 2)).name, timeout=180)
        assert again.state == common_pb2.JOB_STATE_COMPLETED, again.state_message
        renewed = _idle_pids(running, 2)
        assert not set(renewed) & set(idle)
        assert psutil.Process(renewed[0]).ppid() != template.pid


def test_without_warm_workers_each_job_spawns_a_fresh_process(tmp_path, breast_cancer_csv):
    from engine.app import Engine, EngineSettings
    from engine.jobs import states
    from engine.jobs.spec import TrainingSpec

    engine = Engine(EngineSettings(data_dir=tmp_path / "data", max_concurrent_jobs=1, warm_workers=0))
    engine.start()
    try:
        engine.data.create_dataset("default", "bc", {"source_uri": str(breast_cancer_csv), "label_column": "target"})
        job = engine.trainer.start_training("default", "cold", TrainingSpec.from_dict(
            {"framework": "sklearn", "architecture": "sgd", "model_type": "classification", "epochs": 10_000,
             "data": {"train_dataset": "bc", "label_column": "target"}}))
        deadline = time.monotonic() + 120
        pid = None
        while pid is None:
            assert time.monotonic() < deadline, "the job's worker never started"
            entries, _ = engine.journal.logs_after(job.name, 0, 100)
            pid = next((int(m.group(1)) for e in entries if (m := re.match(r"worker (\d+) started", e["message"]))),
                       None)
            time.sleep(0.05)
        worker = psutil.Process(pid)
        assert worker.ppid() == os.getpid() and any("spawn_main" in part for part in worker.cmdline())
        assert worker.nice() == os.nice(0) + 10
        assert engine.trainer.executor.warm_pool.idle() == []
        engine.trainer.cancel(job.name)
        deadline = time.monotonic() + 60
        while engine.trainer.get_job(job.name).state != states.CANCELLED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        engine.shutdown(5)


def _parse(*argv: str):
    from server import config

    parser = argparse.ArgumentParser()
    config.add_serve_arguments(parser)
    return config.from_args(parser.parse_args(list(argv)))


def test_the_warm_workers_flag_is_checked_against_the_job_slots(tmp_path):
    from engine.app import Engine, EngineSettings

    assert _parse().warm_workers is None  # one per job slot, at most 4
    assert _parse("--max-concurrent-jobs", "3", "--warm-workers", "0").warm_workers == 0
    for bad in ("-1", "4"):
        with pytest.raises(SystemExit, match=rf"--warm-workers must be between 0 \(none\) and --max-concurrent-jobs "
                                             rf"\(3\), got {bad}"):
            _parse("--max-concurrent-jobs", "3", "--warm-workers", bad)
    with pytest.raises(ValueError, match=r"warm_workers must be between 0 and max_concurrent_jobs \(2\), got 3"):
        Engine(EngineSettings(data_dir=Path(tmp_path), max_concurrent_jobs=2, warm_workers=3))
    assert EngineSettings(data_dir=tmp_path, max_concurrent_jobs=8).resolved_warm_workers() == 4
    assert EngineSettings(data_dir=tmp_path, max_concurrent_jobs=1).resolved_warm_workers() == 1
