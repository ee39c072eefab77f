"""Prometheus /metrics, JSON logs and OpenTelemetry traces of a real server, read the way an
operator's tools read them: /metrics over HTTP(S), stderr line by line, spans through OTLP/HTTP."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from forge.training import Client, ForgeTrainingError
from forge.training.v1 import data_service_pb2

TRAINER = "forge.training.v1.TrainerService"
DATA = "forge.training.v1.DataService"


def _sgd(dataset: str, epochs: int) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": epochs, "seed": 1},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
    }


def _scrape(port: int, context: ssl.SSLContext | None = None) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of every sample /metrics serves."""
    scheme = "https" if context else "http"
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/metrics", timeout=10, context=context) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _rpc(service: str, method: str, kind: str, code: str | None = None) -> dict[str, str]:
    labels = {"grpc_service": service, "grpc_method": method, "grpc_type": kind}
    return labels if code is None else {**labels, "grpc_code": code}


def test_metrics_count_rpcs_by_method_and_code_and_show_jobs_queue_and_workers(start_server, breast_cancer_csv):
    running = start_server(metrics_address="127.0.0.1:0", max_concurrent_jobs=1)
    assert running.running.metrics_port
    with Client(running.target) as c:
        ds = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")  # a client stream
        quick = c.start_training(_sgd(ds.name, 3), training_job_id="quick")
        c.wait(quick.name, timeout=120)
        logs = list(c.stream_logs(quick.name, follow=False))  # a server stream
        assert logs
        for _ in range(2):
            with pytest.raises(ForgeTrainingError) as missing:
                c.get_job("no-such-job")
            assert missing.value.code.name == "NOT_FOUND"

        long = c.start_training(_sgd(ds.name, 5000), training_job_id="long")
        watcher = c.watch_metrics(long.name)
        next(watcher)  # one epoch done: the worker has reported its resources
        watcher.close()  # the client cancels the stream
        queued = c.start_training(_sgd(ds.name, 3), training_job_id="queued")  # waits: one worker slot
        samples = _scrape(running.running.metrics_port)
        usage = c.metric_history(long.name)[-1].resource_usage
        c.cancel(queued.name)
        c.cancel(long.name, wait=True, timeout=60)
        after = _scrape(running.running.metrics_port)

    assert _value(samples, "grpc_server_handled_total", **_rpc(TRAINER, "GetTrainingJob", "unary", "NOT_FOUND")) == 2
    assert _value(samples, "grpc_server_handling_seconds_count",
                  **_rpc(TRAINER, "GetTrainingJob", "unary", "NOT_FOUND")) == 2
    assert _value(samples, "grpc_server_handling_seconds_sum",
                  **_rpc(TRAINER, "GetTrainingJob", "unary", "NOT_FOUND")) > 0
    assert _value(samples, "grpc_server_handled_total", **_rpc(DATA, "UploadDataset", "client_stream", "OK")) == 1
    assert _value(samples, "grpc_server_handled_total",
                  **_rpc(TRAINER, "StreamTrainingLogs", "server_stream", "OK")) == 1
    assert _value(samples, "grpc_server_started_total", **_rpc(TRAINER, "StreamTrainingLogs", "server_stream")) == 1
    assert _value(samples, "grpc_server_started_total", **_rpc(TRAINER, "WatchTrainingMetrics", "server_stream")) == 1
    polls = _value(samples, "grpc_server_handled_total", **_rpc(TRAINER, "GetTrainingJob", "unary", "OK"))
    assert polls >= 1  # c.wait polled it

    assert _value(samples, "forge_training_jobs", state="COMPLETED") == 1
    assert _value(samples, "forge_training_jobs", state="RUNNING") == 1
    assert _value(samples, "forge_training_jobs", state="PENDING") == 1
    assert _value(samples, "forge_training_jobs", state="FAILED") == 0
    assert _value(samples, "forge_training_queue_length") == 1
    assert _value(samples, "forge_training_workers") == 1
    assert _value(samples, "forge_training_worker_slots") == 1
    job = {"training_job": long.name}
    assert _value(samples, "forge_worker_cpu_seconds_total", **job) > 0
    assert _value(samples, "forge_worker_memory_bytes", **job) > 10 * 2**20  # a Python process with sklearn
    # GPU gauges exist exactly where the worker reported a GPU: absent, not zero, without one.
    assert (_value(samples, "forge_worker_gpu_utilization_ratio", **job) is not None) == usage.gpu_present
    assert (_value(samples, "forge_worker_gpu_memory_bytes", **job) is not None) == usage.gpu_present

    assert _value(after, "grpc_server_handled_total",
                  **_rpc(TRAINER, "WatchTrainingMetrics", "server_stream", "CANCELLED")) == 1
    assert _value(after, "forge_training_jobs", state="CANCELLED") == 2
    assert _value(after, "forge_training_queue_length") == 0
    assert _value(after, "forge_training_workers") == 0
    assert _value(after, "forge_worker_memory_bytes", **job) is None  # gone with its worker


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that also signs itself: the server's, the CA clients must
    present a certificate of, and the client's, all in one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_metrics_share_the_servers_mutual_tls(start_server, tmp_path):
    cert, key = _self_signed(tmp_path)
    running = start_server(metrics_address="127.0.0.1:0", tls_cert=cert, tls_key=key, tls_client_ca=cert)
    trusting = ssl.create_default_context(cafile=str(cert))
    # Refused (an SSL alert, or the connection dropped) without a client certificate, and in plaintext.
    with pytest.raises(OSError):
        _scrape(running.running.metrics_port, trusting)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{running.running.metrics_port}/metrics", timeout=5)
    trusting.load_cert_chain(str(cert), str(key))  # the same listener answers a scraper with one
    samples = _scrape(running.running.metrics_port, trusting)
    assert _value(samples, "forge_training_jobs", state="RUNNING") == 0


def test_a_taken_metrics_port_stops_serve_saying_so(tmp_path, database_flags):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        data_dir = tmp_path / "data"
        done = subprocess.run(
            [sys.executable, "-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", str(data_dir),
             "--metrics-address", address, *database_flags(data_dir)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"could not serve metrics on {address}: " in done.stderr and "in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def json_logging_server(tmp_path, database_flags):
    """`python -m server serve --log-format json --tracing console` as a process of its own:
    (process, port, stderr file, stdout file)."""
    data_dir = tmp_path / "data"
    stderr, stdout = tmp_path / "stderr.log", tmp_path / "stdout.log"
    with open(stderr, "w") as err, open(stdout, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", str(data_dir),
             "--log-format", "json", "--tracing", "console", *database_flags(data_dir)], stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"serving on [\d.]+:(\d+)", stderr.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("forge-training serve did not start:\n" + stderr.read_text()[-3000:])
            time.sleep(0.1)
        yield process, int(found.group(1)), stderr, stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_json_logs_carry_the_request_id_and_console_spans_the_rpc(json_logging_server):
    process, port, stderr, stdout = json_logging_server
    with Client(f"127.0.0.1:{port}", metadata={"x-request-id": "chosen-by-client"}) as chosen:
        with pytest.raises(ForgeTrainingError) as missing:
            chosen.get_job("no-such-job")
    assert missing.value.code.name == "NOT_FOUND"
    with Client(f"127.0.0.1:{port}") as c:
        _, call = c.data.ListDatasets.with_call(data_service_pb2.ListDatasetsRequest())
    given = dict(call.initial_metadata())["x-request-id"]  # the server made one and said which
    assert given
    process.terminate()  # SIGTERM: a clean shutdown flushes the spans
    assert process.wait(60) == 0

    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("serving on 127.0.0.1:" in r["message"] for r in records)
    access = {r["rpc_method"]: r for r in records if r["logger"] == "forge.server.access"}
    missing_line = access[f"/{TRAINER}/GetTrainingJob"]
    assert missing_line["request_id"] == "chosen-by-client" and missing_line["grpc_code"] == "NOT_FOUND"
    listed = access[f"/{DATA}/ListDatasets"]
    assert listed["request_id"] == given and listed["grpc_code"] == "OK" and listed["duration_ms"] >= 0
    assert "request_id" not in records[0]  # startup lines belong to no call

    spans = {s["attributes"]["forge.request_id"]: s for s in map(json.loads, stdout.read_text().splitlines())}
    span = spans[given]
    assert span["name"] == f"{DATA}/ListDatasets" and span["kind"] == "SpanKind.SERVER"
    assert span["attributes"]["rpc.method"] == "ListDatasets"
    assert span["attributes"]["rpc.grpc.status_code"] == 0
    assert span["attributes"]["forge.project"] == "default"
    assert span["context"]["trace_id"] == "0x" + listed["trace_id"]  # the log line names its trace
    assert spans["chosen-by-client"]["attributes"]["rpc.grpc.status_code"] == 5  # NOT_FOUND


@pytest.fixture
def otlp_collector():
    """An OTLP/HTTP trace receiver on loopback: (port, [(path, ExportTraceServiceRequest)] received)."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    received: list = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.append((self.path, trace_service_pb2.ExportTraceServiceRequest.FromString(body)))
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    yield collector.server_port, received
    collector.shutdown()
    collector.server_close()


def test_otlp_tracing_sends_a_span_per_rpc_continuing_the_callers_trace(start_server, otlp_collector):
    port, received = otlp_collector
    running = start_server(tracing="otlp", tracing_endpoint=f"http://127.0.0.1:{port}/v1/traces")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced = {"traceparent": f"00-{trace_id}-{parent_id}-01", "x-request-id": "traced-call"}
    with Client(running.target, metadata=traced) as c:
        with pytest.raises(ForgeTrainingError):
            c.get_job("no-such-job")
    with Client(running.target, project="vision") as c:
        with pytest.raises(ForgeTrainingError) as missing:
            list(c.stream_logs("none", follow=False))
    assert missing.value.code.name == "NOT_FOUND"
    running.stop()  # flushes the batched spans

    assert {path for path, _ in received} == {"/v1/traces"}
    spans = {}
    for _, request in received:
        for resource_spans in request.resource_spans:
            assert {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"] == \
                "forge-training"
            for span in (s for scope in resource_spans.scope_spans for s in scope.spans):
                attributes = {a.key: a.value for a in span.attributes}
                spans[attributes["rpc.method"].string_value] = span, attributes
    assert set(spans) == {"GetTrainingJob", "StreamTrainingLogs"}  # one span per RPC
    span, attributes = spans["GetTrainingJob"]
    assert span.name == f"{TRAINER}/GetTrainingJob" and span.kind == span.SPAN_KIND_SERVER
    assert span.trace_id.hex() == trace_id and span.parent_span_id.hex() == parent_id  # the caller's trace
    assert attributes["forge.request_id"].string_value == "traced-call"
    assert attributes["rpc.grpc.status_code"].int_value == 5  # NOT_FOUND
    assert attributes["forge.project"].string_value == "default"
    span, attributes = spans["StreamTrainingLogs"]
    assert span.trace_id.hex() != trace_id and not span.parent_span_id  # a trace of its own
    assert attributes["forge.project"].string_value == "vision"
    assert attributes["rpc.grpc.status_code"].int_value == 5
