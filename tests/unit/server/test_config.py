"""`forge-training serve` flags: refusals that protect a server without authentication or TLS."""

from __future__ import annotations

import argparse

import pytest

from server import config


def _parse(*argv: str) -> config.ServerConfig:
    parser = argparse.ArgumentParser()
    config.add_serve_arguments(parser)
    return config.from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "127.0.0.2:1", "[::1]:50051", "localhost:50051"])
def test_loopback_addresses_need_nothing_more(address):
    assert _parse("--address", address).address == address


@pytest.mark.parametrize("address", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "trainer.internal:50051"])
def test_other_addresses_need_auth_and_tls_or_insecure(address, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(SystemExit, match="no --auth api-key and --tls-cert/--tls-key"):
        _parse("--address", address)
    with pytest.raises(SystemExit, match="no --tls-cert/--tls-key"):
        _parse("--address", address, "--auth", "api-key")
    with pytest.raises(SystemExit, match="no --auth api-key:"):
        _parse("--address", address, "--tls-cert", str(cert), "--tls-key", str(key))
    secured = _parse("--address", address, "--auth", "api-key", "--tls-cert", str(cert), "--tls-key", str(key))
    assert secured.auth == "api-key" and secured.tls_cert == cert
    assert _parse("--address", address, "--insecure").address == address


def test_tls_and_limits_are_checked_at_startup(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(SystemExit, match="go together"):
        _parse("--tls-cert", str(cert))
    with pytest.raises(SystemExit, match="no such file"):
        _parse("--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem"))
    with pytest.raises(SystemExit, match="needs --tls-cert"):
        _parse("--tls-client-ca", str(cert))
    with pytest.raises(SystemExit, match="at least 2097152"):
        _parse("--max-message-bytes", "1000")
    with pytest.raises(SystemExit, match="max-streams-per-key"):
        _parse("--max-streams-per-key", "-1")
    assert _parse("--max-streams-per-key", "0").max_streams_per_key == 0


def test_storage_and_pipeline_functions_are_checked_at_startup():
    with pytest.raises(SystemExit, match="bucket"):
        _parse("--storage-type", "s3")
    with pytest.raises(SystemExit, match="NAME=MODULE:CALLABLE"):
        _parse("--pipeline-function", "broken")
    with pytest.raises(SystemExit, match="no_such_module"):
        _parse("--pipeline-function", "f=no_such_module:run")
    loaded = _parse("--pipeline-function", "dumps=json:dumps").pipeline_functions
    assert loaded["dumps"]({"a": 1}) == '{"a": 1}'


def test_private_alert_webhooks_only_for_a_loopback_server_without_authentication():
    assert _parse().engine_settings().alert_private_webhooks is True
    assert _parse("--auth", "api-key").engine_settings().alert_private_webhooks is False
    assert _parse("--address", "0.0.0.0:1", "--insecure").engine_settings().alert_private_webhooks is False
    assert _parse("--auth", "api-key", "--alert-private-webhooks").engine_settings().alert_private_webhooks is True


def test_registered_callbacks_are_imported_and_checked_at_startup():
    with pytest.raises(SystemExit, match="NAME=MODULE:CLASS"):
        _parse("--callback", "broken")
    with pytest.raises(SystemExit, match="not a class deriving from engine.callbacks.base.Callback"):
        _parse("--callback", "dumps=json:dumps")
    with pytest.raises(SystemExit, match="time_budget is a built-in callback type"):
        _parse("--callback", "time_budget=engine.callbacks.time_budget:TimeBudget")
    config = _parse("--callback", "Limit=engine.callbacks.threshold:MetricThreshold")
    assert config.callbacks == {"limit": "engine.callbacks.threshold:MetricThreshold"}  # as requests name it
    assert config.engine_settings().callbacks == config.callbacks


def test_local_data_is_open_only_to_a_loopback_server_without_authentication(tmp_path):
    assert _parse().data_roots is None
    assert _parse("--auth", "api-key").data_roots == ()
    assert _parse("--address", "0.0.0.0:1", "--insecure").data_roots == ()
    assert _parse("--auth", "api-key", "--data-root", str(tmp_path)).data_roots == (str(tmp_path),)


def test_job_defaults_and_ingest_limits_are_checked_at_startup():
    parsed = _parse("--default-job-memory", "2Gi", "--default-job-timeout", "60", "--max-columns", "500")
    assert parsed.default_job_memory_bytes == 2 << 30 and parsed.default_job_timeout_seconds == 60
    assert parsed.ingest_limits.max_columns == 500
    with pytest.raises(SystemExit, match="--default-job-memory"):
        _parse("--default-job-memory", "lots")
    with pytest.raises(SystemExit, match="max_columns must be at least 1"):
        _parse("--max-columns", "0")


def test_the_executor_flags_are_checked_at_startup():
    assert _parse().executor == "local"
    on_ray = _parse("--executor", "ray", "--ray-address", "10.0.0.5:6379")
    assert (on_ray.executor, on_ray.ray_address) == ("ray", "10.0.0.5:6379")
    with pytest.raises(SystemExit, match="--ray-address is for --executor ray"):
        _parse("--ray-address", "10.0.0.5:6379")
    with pytest.raises(SystemExit, match="--warm-workers are local processes"):
        _parse("--executor", "ray", "--warm-workers", "1")
    with pytest.raises(SystemExit):
        _parse("--executor", "kubernetes")


def test_a_ray_cluster_that_does_not_answer_stops_the_start_saying_where_and_what_to_do():
    import socket

    from engine.errors import FailedPrecondition
    from engine.jobs.ray_executor import RayExecutor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(FailedPrecondition) as refused:
        RayExecutor(f"127.0.0.1:{port}").start()
    assert refused.value.message == (
        f"--executor ray: could not connect to the Ray cluster at 127.0.0.1:{port}: nothing answers at "
        f"127.0.0.1:{port} (Connection refused); start one (ray start --head) or give its address with --ray-address")


def test_a_ray_task_is_given_absolute_paths_whatever_the_data_dir_was_given_as(tmp_path, monkeypatch):
    from engine.jobs.ray_executor import _absolute_paths

    monkeypatch.chdir(tmp_path)
    payload = {"job": "projects/p/trainingJobs/j", "checkpoint_dir": "forge-data/checkpoints/p/j",
               "artifact_dir": "forge-data/artifacts/p/j", "data_dir": "forge-data", "spec": {},
               "datasets": {"train": {"path": "forge-data/datasets/p/t/data.parquet", "sha256": "x"},
                            "validation": None},
               "resume": {"epoch": 5, "path": "forge-data/checkpoints/p/j/epoch-000005.ckpt"}}
    given = _absolute_paths(payload)
    assert given["data_dir"] == str(tmp_path / "forge-data")
    assert given["datasets"]["train"] == {"path": str(tmp_path / "forge-data/datasets/p/t/data.parquet"),
                                          "sha256": "x"}
    assert given["datasets"]["validation"] is None
    assert given["resume"]["path"] == str(tmp_path / "forge-data/checkpoints/p/j/epoch-000005.ckpt")
    assert given["checkpoint_dir"].startswith(str(tmp_path)) and given["artifact_dir"].startswith(str(tmp_path))
    assert payload["data_dir"] == "forge-data"  # the server's own copy is unchanged
