"""Shared fixtures: real data (scikit-learn's bundled breast cancer set) and a real server on port 0."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest


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


class ServerThread:
    """A real forge-training server on its own event loop in a background thread."""

    def __init__(self, data_dir: Path, max_concurrent_jobs: int = 2):
        from server.config import ServerConfig

        self.config = ServerConfig(address="127.0.0.1:0", data_dir=data_dir, max_concurrent_jobs=max_concurrent_jobs,
                                   shutdown_grace_seconds=15.0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running = self._call(self._start())
        self.port = self.running.port
        self.engine = self.running.engine

    async def _start(self):
        from server.app import create_server

        return await create_server(self.config)

    def _call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._call(self.running.stop(self.config.shutdown_grace_seconds), timeout=120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


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


@pytest.fixture
def start_server(tmp_path):
    """Start extra servers (e.g. to restart one on the same data dir); all are stopped at the end."""
    started: list[ServerThread] = []

    def start(data_dir: Path | None = None, **kwargs) -> ServerThread:
        running = ServerThread(data_dir or tmp_path / "forge-data", **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
