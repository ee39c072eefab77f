"""What the fault tests share: finding the worker process of a job, to kill it for real."""

from __future__ import annotations

import re
import time

import pytest


def _worker_pid(client, job: str, attempt: int = 1, timeout: float = 60) -> int:
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
