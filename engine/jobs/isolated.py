"""Run one function in a fresh spawned process and bring its result (or its error) back.

For work the server process must not do itself: anything that imports a framework
(evaluation) or runs code from a file (an allowed pickle). A spawned child shares no
state with the server; a timeout kills it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from engine.errors import DeadlineExceeded, ForgeError


def run_isolated(fn: Callable[..., Any], args: tuple, timeout: float, *, what: str) -> Any:
    """fn(*args) in a child process. engine.errors pass through unchanged (they pickle);
    any other failure becomes a RuntimeError naming `what`."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        future = pool.submit(fn, *args)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            raise DeadlineExceeded(f"{what} took longer than {timeout:g} s and was stopped") from None
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001 - a child's crash must not look like the server's
            raise RuntimeError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
