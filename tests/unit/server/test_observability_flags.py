"""`forge-training serve` observability flags: what they accept, and the refusals that keep /metrics
off other machines unless it is protected or the operator accepts the risk."""

from __future__ import annotations

import argparse

import pytest

from server import config


def _parse(*argv: str) -> config.ServerConfig:
    parser = argparse.ArgumentParser()
    config.add_serve_arguments(parser)
    return config.from_args(parser.parse_args(list(argv)))


def test_observability_is_off_unless_asked_for():
    parsed = _parse()
    assert (parsed.metrics_address, parsed.log_format, parsed.tracing, parsed.tracing_endpoint) == \
        ("", "text", "none", "")


@pytest.mark.parametrize("address", ["127.0.0.1:0", "127.0.0.1:9464", "localhost:9464", "[::1]:9464"])
def test_a_loopback_metrics_address_needs_nothing_more(address):
    assert _parse("--metrics-address", address).metrics_address == address


@pytest.mark.parametrize("address", ["9464", ":9464", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_malformed_metrics_address_says_the_form(address):
    with pytest.raises(SystemExit, match="use HOST:PORT, e.g. 127.0.0.1:9464"):
        _parse("--metrics-address", address)


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464", "metrics.internal:9464"])
def test_metrics_reachable_from_other_machines_need_mutual_tls_or_insecure(address, tmp_path):
    cert, key, ca = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("-----BEGIN-----\n")
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with pytest.raises(SystemExit, match="add --tls-client-ca"):
        _parse("--metrics-address", address)
    with pytest.raises(SystemExit, match="add --tls-client-ca"):  # TLS alone lets anyone read it
        _parse("--metrics-address", address, *tls)
    assert _parse("--metrics-address", address, *tls, "--tls-client-ca", str(ca)).metrics_address == address
    assert _parse("--metrics-address", address, "--insecure").metrics_address == address


def test_tracing_endpoint_goes_with_otlp_and_is_a_url():
    with pytest.raises(SystemExit, match="add --tracing otlp"):
        _parse("--tracing-endpoint", "http://collector:4318/v1/traces")
    with pytest.raises(SystemExit, match="OTLP/HTTP traces URL"):
        _parse("--tracing", "otlp", "--tracing-endpoint", "collector:4317")
    parsed = _parse("--tracing", "otlp", "--tracing-endpoint", "http://collector:4318/v1/traces")
    assert (parsed.tracing, parsed.tracing_endpoint) == ("otlp", "http://collector:4318/v1/traces")
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        _parse("--tracing", "jaeger")


def test_environment_variables_set_the_defaults(monkeypatch):
    monkeypatch.setenv("FORGE_TRAINING_LOG_FORMAT", "json")
    monkeypatch.setenv("FORGE_TRAINING_METRICS_ADDRESS", "127.0.0.1:9464")
    monkeypatch.setenv("FORGE_TRAINING_TRACING", "console")
    parsed = _parse()
    assert (parsed.log_format, parsed.metrics_address, parsed.tracing) == ("json", "127.0.0.1:9464", "console")
