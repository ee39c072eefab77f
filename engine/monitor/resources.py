"""Resource usage of a worker process: CPU and memory from psutil, GPU from NVML.

Without a GPU (or without the NVIDIA driver) NVML fails to initialise; the GPU is
then reported as absent, never as zero usage.
"""

from __future__ import annotations

import os
from typing import Any

import psutil


class ResourceSampler:
    def __init__(self, pid: int | None = None):
        self._process = psutil.Process(pid or os.getpid())
        self._cpus = psutil.cpu_count() or 1
        self._process.cpu_percent(None)  # primes the counter; the next call measures since now
        # Read once: parsing /proc/meminfo was half of every per-epoch sample.
        self._memory_total = int(psutil.virtual_memory().total)
        self._nvml = None
        self._gpu = None
        try:
            import pynvml

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() > 0:
                self._nvml = pynvml
                self._gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # pynvml.NVMLError or a missing library: no GPU here
            self._nvml = None

    def sample(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "cpu_usage": min(1.0, self._process.cpu_percent(None) / 100.0 / self._cpus),
            "memory_usage": int(self._process.memory_info().rss),
            "memory_total": self._memory_total,
            "gpu_present": self._gpu is not None,
        }
        if self._gpu is not None:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(self._gpu)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(self._gpu)
                usage.update(gpu_usage=util.gpu / 100.0, gpu_memory=int(mem.used), gpu_memory_total=int(mem.total))
            except Exception:
                usage["gpu_present"] = False
        return usage
