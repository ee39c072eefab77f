"""Shared fixtures: real data (scikit-learn's bundled breast cancer set) and a real server on port 0."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

# Ray clusters in tests are one node on loopback: Ray otherwise swaps 127.0.0.1 for this
# machine's own network address. Read when ray is first imported (by whatever imports it), so
# set before any test module loads; the variable is named for the platforms where it is the default.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


class PostgresDatabases:
    """Databases on the test PostgreSQL server (FORGE_TEST_POSTGRES_URL), dropped at the end."""

    def __init__(self, server_url: str):
        import sqlalchemy as sa

        self.server = sa.make_url(server_url)
        self.admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.created: set[str] = set()

    def url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def create(self, name: str) -> str:
        import sqlalchemy as sa

        if name not in self.created:
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            self.created.add(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.discard(name)

    @contextmanager
    def throwaway(self, prefix: str = "forge_throwaway"):
        """The URL of a new, empty database, dropped afterwards."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        try:
            yield self.create(name)
        finally:
            self.drop(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)
        self.admin.dispose()


_postgres: PostgresDatabases | None = None


def postgres_databases() -> PostgresDatabases:
    global _postgres
    if _postgres is None:
        _postgres = PostgresDatabases(os.environ["FORGE_TEST_POSTGRES_URL"])
    return _postgres


def servers_use_postgres() -> bool:
    """FORGE_TEST_DATABASE=postgresql (make test-postgres): every server the tests start keeps
    its metadata in PostgreSQL instead of the data dir's SQLite file."""
    choice = os.environ.get("FORGE_TEST_DATABASE", "sqlite")
    if choice not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"FORGE_TEST_DATABASE={choice!r}: use sqlite or postgresql")
    if choice == "postgresql" and not os.environ.get("FORGE_TEST_POSTGRES_URL"):
        raise pytest.UsageError("FORGE_TEST_DATABASE=postgresql needs FORGE_TEST_POSTGRES_URL "
                                "(. .ci/postgres.sh; start_postgres)")
    return choice == "postgresql"


def database_for(data_dir: Path) -> str:
    """The database URL a test server on data_dir uses: "" (the data dir's SQLite file) or, under
    FORGE_TEST_DATABASE=postgresql, a PostgreSQL database of its own for that data dir, so a
    server restarted on the same data dir finds the same jobs, as it would with SQLite."""
    if not servers_use_postgres():
        return ""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    return postgres_databases().create(f"forge_dir_{digest}")


def pytest_report_header(config):
    return f"test servers' metadata database: {'postgresql' if servers_use_postgres() else 'sqlite'}"


def pytest_terminal_summary(terminalreporter):
    """What a test asked to report (user property "summary", e.g. how many inputs the fuzzer
    tried): in the closing summary, where it is seen with `-n 2` as without."""
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == "summary" and getattr(report, "when", "call") == "call":
                    terminalreporter.write_line(value)


def pytest_sessionfinish(session, exitstatus):
    if _postgres is not None:
        _postgres.drop_all()


@pytest.fixture(scope="session")
def breast_cancer_frame():
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame


@pytest.fixture(scope="session")
def breast_cancer_csv(tmp_path_factory, breast_cancer_frame) -> Path:
    path = tmp_path_factory.mktemp("data") / "breast_cancer.csv"
    breast_cancer_frame.to_csv(path, index=False)
    return path


def ServerThread(data_dir: Path, max_concurrent_jobs: int = 2, database_url: str = "", **settings):
    """A real forge-training server on its own event loop in a background thread (the
    BackgroundServer applications embed), on a free loopback port."""
    from server.app import BackgroundServer
    from server.config import ServerConfig

    # settings: any other ServerConfig field, e.g. storage or load_policy.
    config = ServerConfig(address="127.0.0.1:0", data_dir=data_dir, max_concurrent_jobs=max_concurrent_jobs,
                          shutdown_grace_seconds=15.0, database_url=database_url or database_for(data_dir),
                          **settings)
    running = BackgroundServer(config)
    running.target = f"127.0.0.1:{running.port}"
    return running


def _tool(name: str):
    """tools/<name>.py as a module (the tools are scripts, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def api_docs():
    """tools/gen_api_docs.py, which writes docs/api/ from the proto comments."""
    return _tool("gen_api_docs")


@pytest.fixture(scope="session")
def config_docs():
    """tools/gen_config_docs.py, which writes docs/configuration.md from the serve parser."""
    return _tool("gen_config_docs")


@pytest.fixture(scope="session")
def engine_settings():
    """engine_settings(data_dir, **fields): EngineSettings of an in-process engine, on the database
    a test server on data_dir uses (so make test-postgres runs the engine on PostgreSQL too)."""
    from engine import EngineSettings

    return lambda data_dir, **fields: EngineSettings(data_dir=data_dir, database_url=database_for(data_dir),
                                                     **fields)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = ServerThread(tmp_path_factory.mktemp("forge-data"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    from forge.training import Client

    with Client(server.target) as c:
        yield c


def _servers(default_dir):
    """A start(data_dir=None, **settings) function, and every server it started stopped at the end."""
    started: list = []  # BackgroundServer

    def start(data_dir: Path | None = None, **kwargs):
        running = ServerThread(data_dir or default_dir(), **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


@pytest.fixture
def start_server(tmp_path):
    """Start extra servers (e.g. to restart one on the same data dir); all are stopped at the end."""
    yield from _servers(lambda: tmp_path / "forge-data")


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """Start a server shared by one test module (e.g. with its own configuration)."""
    yield from _servers(lambda: tmp_path_factory.mktemp("module-data"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL database for tests (.ci/run starts one); skipped where none is configured,
    except in CI, where a missing database is a failure."""
    url = os.environ.get("FORGE_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must provide FORGE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
        pytest.skip("set FORGE_TEST_POSTGRES_URL to a PostgreSQL database to run this test")
    return url


def _local_endpoint(name: str, command, ready_url: str | None = None):
    """Run an object-store emulator on a free loopback port until the session ends: `command(port)`
    is its argv; it is ready when an HTTP request to it gets any answer. Yields its URL."""
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(ready_url or url, timeout=1)
            break
        except urllib.error.HTTPError:
            break  # it answered, if only to refuse an anonymous request
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"{name} did not start")
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3-compatible endpoint (moto in server mode) on loopback, stopped at the end."""
    import sys

    yield from _local_endpoint("moto server", lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                                            "-p", str(port)])


@pytest.fixture(scope="session")
def gcs_endpoint():
    """A local Google Cloud Storage emulator (gcp-storage-emulator, in memory) on loopback."""
    import sys

    yield from _local_endpoint("gcp-storage-emulator", lambda port: [
        sys.executable, "-m", "gcp_storage_emulator", "start", "--host",
        "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"])


# Azurite's well-known development account (its documentation's; it guards nothing).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A local Azure Blob Storage (Azurite, from npm: package.json) on loopback; yields the
    connection string a client uses, as AZURE_STORAGE_CONNECTION_STRING."""
    binary = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Azurite is missing: make test installs it (npm install)")
        pytest.skip("Azurite is not installed: run `npm install` (make test does)")
    workspace = tmp_path_factory.mktemp("azurite")
    for url in _local_endpoint("Azurite", lambda port: [
            str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(workspace),
            "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--loose"]):
        yield (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
               f"BlobEndpoint={url}/{AZURITE_ACCOUNT};")


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory):
    """A Ray cluster's address: FORGE_TEST_RAY_ADDRESS (.ci/run starts a head with
    `ray start --head`), else a head started here on a free port and stopped at the end."""
    import shutil
    import socket
    import subprocess
    import sys

    given = os.environ.get("FORGE_TEST_RAY_ADDRESS")
    if given:
        yield given
        return
    ray = Path(sys.executable).with_name("ray")
    if not ray.exists() and not shutil.which("ray"):
        pytest.fail("the ray command is missing: make venv installs it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = str(ray if ray.exists() else "ray")
    started = subprocess.run([command, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                              "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"ray start --head failed: {started.stderr[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([command, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def write_matmul_onnx():
    """write(path, width) -> sha256: an ONNX model nobody trained here, x [n, 4] @ W [4, width]
    with random (incompressible) W, about 16 * width bytes; written once, never held twice."""
    def write(path: Path, width: int) -> str:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        weights = np.random.default_rng(0).standard_normal((4, width), dtype=np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["variable"])], "matmul",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
            [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, width])],
            [numpy_helper.from_array(weights, "W")])
        del weights
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    return write


def serve_database_flags(data_dir: Path) -> list[str]:
    """The --database-url flag for a `forge-training serve` process on data_dir (see database_for)."""
    url = database_for(data_dir)
    return ["--database-url", url] if url else []


@pytest.fixture(scope="session")
def servers_postgres_url() -> str:
    """The PostgreSQL server under FORGE_TEST_DATABASE=postgresql, else "" (SQLite)."""
    return os.environ["FORGE_TEST_POSTGRES_URL"] if servers_use_postgres() else ""


@pytest.fixture(scope="session")
def database_flags():
    """flags(data_dir): the --database-url a test's own `serve` process on data_dir needs."""
    return serve_database_flags


@pytest.fixture(scope="session")
def postgres(postgres_url) -> PostgresDatabases:
    """Databases on the test PostgreSQL server: .throwaway() for a new empty one."""
    return postgres_databases()


@pytest.fixture
def serve_processes():
    """start(data_dir, *flags) -> (process, port): `forge-training serve` as a process of its own (to
    measure its memory, or kill it with SIGKILL); every one still alive is stopped at the end."""
    import re
    import subprocess
    import sys
    import time

    started: list[subprocess.Popen] = []

    def start(data_dir: Path, *flags: str) -> tuple[subprocess.Popen, int]:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", str(data_dir),
             *serve_database_flags(data_dir), *flags], stderr=subprocess.PIPE, text=True)
        started.append(process)
        deadline = time.monotonic() + 60
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen.append(line)
            found = re.search(r"serving on [\d.]+:(\d+)", line)
            if found:
                # Keep reading what it logs, so a full pipe never blocks it.
                threading.Thread(target=process.stderr.read, daemon=True).start()
                return process, int(found.group(1))
            if not line and process.poll() is not None:
                break
        process.kill()
        pytest.fail("forge-training serve did not start:\n" + "".join(seen[-30:]))

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


@pytest.fixture(scope="session")
def service_prediction(server):
    """predict(job_name, frame, scratch) -> (X, Prediction, class labels, preprocessing): what
    the service's stored model predicts for `frame`, computed as EvaluateModel computes it
    (engine.jobs.evaluate.load_stored_run on the job's verified model.state)."""
    from engine.data.training_data import arrays_from_prep
    from engine.jobs.evaluate import load_stored_run
    from engine.jobs.spec import TrainingSpec
    from engine.storage import checkpoint
    from engine.storage.files import read_verified

    def predict(job_name: str, frame, scratch: Path):
        job = server.engine.trainer.get_job(job_name)
        spec = TrainingSpec.from_dict(job.spec)
        prep = job.model_info["preprocessing"]
        state_info = job.artifacts["state"]
        local = server.engine.storage.fetch(state_info, scratch / "model.state")
        manifest, state = checkpoint.unpack(read_verified(local, state_info["sha256"]))
        assert manifest["framework"] == spec.framework
        X, y = arrays_from_prep(spec, prep, frame)
        run = load_stored_run(spec, prep, job.model_info["classes"], state, y)
        labels = run.class_labels if spec.model_type == "classification" else None
        return X, run.predict(X), labels, prep

    return predict


@pytest.fixture(scope="session")
def cancel_unfinished(client):
    """cancel(names): cancel the jobs a module started that are still going (under -k only
    some are waited for), rather than leave them to the shared server."""
    from forge.training import common_pb2

    final = (common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED,
             common_pb2.JOB_STATE_CANCELLING)

    def cancel(names) -> None:
        for name in names:
            if client.get_job(name).state not in final:
                client.cancel(name)

    return cancel


# ----- finding a job's worker process (to kill it for real) and waiting for its progress

def _worker_pid(client, job: str, attempt: int = 1, timeout: float = 120) -> int:
    """The pid of the job's worker for `attempt`, from the line every worker logs first:
    "worker 1234 started (attempt 1)"."""
    pattern = re.compile(rf"worker (\d+) started \(attempt {attempt}\)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in client.stream_logs(job, follow=False):
            found = pattern.match(entry.message)
            if found:
                return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no worker of {job} started attempt {attempt} within {timeout:g} s")


@pytest.fixture(scope="session")
def worker_pid():
    """worker_pid(client, job, attempt=1): the pid of a job's worker process."""
    return _worker_pid


def _wait_for_epoch(client, name: str, epoch: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get_job(name).current_epoch < epoch:
        assert time.monotonic() < deadline, f"{name} did not reach epoch {epoch}"
        time.sleep(0.02)


@pytest.fixture(scope="session")
def wait_for_epoch():
    """wait_for_epoch(client, job, epoch, timeout=120): until the job has recorded that epoch."""
    return _wait_for_epoch
