"""`forge-training serve` flags: refusals that protect a server without authentication."""

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
def test_other_addresses_need_insecure(address):
    with pytest.raises(SystemExit, match="no authentication yet"):
        _parse("--address", address)
    assert _parse("--address", address, "--insecure").address == address


def test_storage_and_pipeline_functions_are_checked_at_startup():
    with pytest.raises(SystemExit, match="bucket"):
        _parse("--storage-type", "s3")
    with pytest.raises(SystemExit, match="NAME=MODULE:CALLABLE"):
        _parse("--pipeline-function", "broken")
    with pytest.raises(SystemExit, match="no_such_module"):
        _parse("--pipeline-function", "f=no_such_module:run")
    loaded = _parse("--pipeline-function", "dumps=json:dumps").pipeline_functions
    assert loaded["dumps"]({"a": 1}) == '{"a": 1}'
