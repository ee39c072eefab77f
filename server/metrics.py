"""Prometheus metrics of one server, served at /metrics on an HTTP listener of their own.

Each server has its own registry rather than prometheus_client's global one, so servers that
share a process (the tests run several) never mix their counts. RPCs are counted and timed by
CallInterceptor (server/interceptors.py), the one place every call passes, under the names
go-grpc-prometheus made common, so existing gRPC dashboards work. Jobs, the queue and the
workers are read from the engine when Prometheus scrapes: one GROUP BY query and a look at the
running workers' processes, never a stale copy.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.jobs import states
from engine.jobs.trainer import ModelTrainer
from server.http_listener import HttpListener

# Seconds; streams (watchers, log followers) live as long as a job runs, so the buckets go to hours.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)
RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")


class RpcMetrics:
    """Counts and durations of RPCs by service, method, type (unary, client_stream, server_stream,
    bidi_stream) and status code. In flight: started minus handled."""

    def __init__(self, registry: CollectorRegistry):
        self.started = Counter("grpc_server_started_total", "RPCs started on the server.", RPC_LABELS,
                               registry=registry)
        self.handled = Counter("grpc_server_handled_total", "RPCs completed on the server, by status code.",
                               (*RPC_LABELS, "grpc_code"), registry=registry)
        self.seconds = Histogram("grpc_server_handling_seconds",
                                 "Seconds from an RPC's start to its status; a stream's whole life.",
                                 (*RPC_LABELS, "grpc_code"), buckets=DURATION_BUCKETS, registry=registry)

    def start(self, service: str, method: str, rpc_type: str) -> None:
        self.started.labels(service, method, rpc_type).inc()

    def finish(self, service: str, method: str, rpc_type: str, code: str, seconds: float) -> None:
        labels = (service, method, rpc_type, code)
        self.handled.labels(*labels).inc()
        self.seconds.labels(*labels).observe(seconds)


class EngineCollector(Collector):
    """Training jobs by state, the queue, and each running worker's CPU, memory and GPU, read at
    every scrape."""

    def __init__(self, trainer: ModelTrainer):
        self.trainer = trainer

    def collect(self) -> Iterator[Metric]:
        counts = self.trainer.count_by_state()
        jobs = GaugeMetricFamily("forge_training_jobs", "Training jobs by state.", labels=["state"])
        for state in states.TRANSITIONS:
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily("forge_training_queue_length", "Training jobs waiting for a worker (PENDING).",
                                value=counts.get(states.PENDING, 0))
        workers = self.trainer.worker_resources()
        yield GaugeMetricFamily("forge_training_workers", "Worker processes running a training job.",
                                value=len(workers))
        yield GaugeMetricFamily("forge_training_worker_slots", "Workers that may run at once (--max-concurrent-jobs).",
                                value=self.trainer.settings.max_concurrent_jobs)
        # "training_job", not "job": Prometheus gives every series the scrape job's name as `job`.
        cpu = CounterMetricFamily("forge_worker_cpu_seconds", "CPU seconds (user and system) used by a running "
                                  "worker and the processes it started; absent for a worker on a Ray cluster.",
                                  labels=["training_job"])
        memory = GaugeMetricFamily("forge_worker_memory_bytes", "Resident memory of a running worker and the "
                                   "processes it started (a worker on a Ray cluster: as it measured it at the "
                                   "end of its last epoch).", labels=["training_job"])
        gpu = GaugeMetricFamily("forge_worker_gpu_utilization_ratio", "Utilization (0-1) of a worker's GPU, as "
                                "the worker measured it at the end of its last epoch; absent without a GPU.",
                                labels=["training_job"])
        gpu_memory = GaugeMetricFamily("forge_worker_gpu_memory_bytes", "Memory used on a worker's GPU at the end "
                                       "of its last epoch; absent without a GPU.", labels=["training_job"])
        for worker in workers:
            if worker.cpu_seconds is not None:
                cpu.add_metric([worker.job], worker.cpu_seconds)
            if worker.memory_bytes is not None:
                memory.add_metric([worker.job], worker.memory_bytes)
            if worker.gpu_usage is not None:
                gpu.add_metric([worker.job], worker.gpu_usage)
            if worker.gpu_memory_bytes is not None:
                gpu_memory.add_metric([worker.job], worker.gpu_memory_bytes)
        yield from (cpu, memory, gpu, gpu_memory)


class MetricsEndpoint(HttpListener):
    """The registry of one server and, once started, the HTTP listener that serves it."""

    def __init__(self, trainer: ModelTrainer):
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self.registry.register(EngineCollector(trainer))

    def start(self, address: str, certfile=None, keyfile=None, client_cafile=None) -> int:
        """Listen on host:port (port 0: a free one), over TLS with a certificate, mutual with a
        client CA; returns the port (OSError when it cannot)."""
        host, _, port = address.rpartition(":")
        tls = dict(certfile=str(certfile), keyfile=str(keyfile)) if certfile else {}
        if client_cafile:
            tls.update(client_cafile=str(client_cafile), client_auth_required=True)
        self._httpd, self._thread = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry, **tls)
        return self._httpd.server_port

