"""The bench/ modules, loaded by path (bench/ is not a package) for their smoke tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="session")
def bench_module():
    """load(name) -> bench/<name>.py as a module, loaded once per test process."""
    def load(name: str):
        module_name = f"bench_{name}"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # dataclasses look their module up by name
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    return load
