"""server/metrics.py: what the engine's plain data becomes on /metrics (the RPC counters and a
real trainer are exercised end to end in tests/integration/test_observability.py)."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.jobs.trainer import WorkerResources
from server.metrics import MetricsEndpoint


class Trainer:
    """The two readings the collector takes from ModelTrainer, as a GPU machine would give them."""

    settings = SimpleNamespace(max_concurrent_jobs=4)

    def count_by_state(self):
        return {"RUNNING": 2, "PENDING": 3, "COMPLETED": 7}

    def worker_resources(self):
        return [WorkerResources("projects/a/trainingJobs/gpu", 12.5, 2 << 30, 0.75, 5 << 30),
                WorkerResources("projects/a/trainingJobs/cpu", 3.0, 1 << 30)]


def _samples(endpoint: MetricsEndpoint) -> dict:
    text = generate_latest(endpoint.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_jobs_queue_and_workers_come_from_the_trainer_at_each_scrape():
    samples = _samples(MetricsEndpoint(Trainer()))
    assert samples[("forge_training_jobs", (("state", "PENDING"),))] == 3
    assert samples[("forge_training_jobs", (("state", "CANCELLED"),))] == 0  # every state, zero included
    assert samples[("forge_training_queue_length", ())] == 3
    assert samples[("forge_training_workers", ())] == 2
    assert samples[("forge_training_worker_slots", ())] == 4
    gpu, cpu = (("training_job", "projects/a/trainingJobs/gpu"),), (("training_job", "projects/a/trainingJobs/cpu"),)
    assert samples[("forge_worker_cpu_seconds_total", gpu)] == 12.5
    assert samples[("forge_worker_memory_bytes", cpu)] == 1 << 30
    assert samples[("forge_worker_gpu_utilization_ratio", gpu)] == 0.75
    assert samples[("forge_worker_gpu_memory_bytes", gpu)] == 5 << 30
    assert ("forge_worker_gpu_utilization_ratio", cpu) not in samples  # no GPU: absent, not zero


def test_servers_in_one_process_keep_their_counts_apart():
    first, second = MetricsEndpoint(Trainer()), MetricsEndpoint(Trainer())
    first.rpc.start("forge.training.v1.TrainerService", "GetTrainingJob", "unary")
    first.rpc.finish("forge.training.v1.TrainerService", "GetTrainingJob", "unary", "NOT_FOUND", 0.002)
    labels = (("grpc_code", "NOT_FOUND"), ("grpc_method", "GetTrainingJob"),
              ("grpc_service", "forge.training.v1.TrainerService"), ("grpc_type", "unary"))
    assert _samples(first)[("grpc_server_handled_total", labels)] == 1
    buckets = {le: _samples(first)[("grpc_server_handling_seconds_bucket", (*labels, ("le", le)))]
               for le in ("0.001", "0.0025", "+Inf")}
    assert buckets == {"0.001": 0, "0.0025": 1, "+Inf": 1}  # 2 ms
    assert ("grpc_server_handled_total", labels) not in _samples(second)
