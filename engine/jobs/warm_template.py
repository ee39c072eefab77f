"""The warm template: the process every warm worker is forked from (supervisor.WarmPool).

Imported first by that process, and by nothing else: importing it is all it does. The
template behaves as a worker does: it runs at a lower CPU priority than the server (its
imports take seconds of CPU that the server's event loop must not wait behind, and the
workers forked from it inherit its niceness), and it ignores SIGTERM and Ctrl-C, which a
service manager or a terminal sends to every process of the service: the server decides
when its workers stop. Then it imports what a job needs, once for every worker forked from
it. It exits by itself once the server and every worker forked from it are gone.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal

from engine.jobs.worker import WORKER_NICENESS

# The worker's own modules, and the frameworks most jobs use with what their data loading
# and exports need. PyTorch and TensorFlow are left out: they would add hundreds of MiB to
# every warm worker (and count against the memory limit of every job), so their jobs import
# them in their own worker, as before.
IMPORTS = (
    "engine.jobs.worker",
    "engine.callbacks.early_stopping",
    "engine.data.ingest",
    "engine.data.processing",
    "engine.data.text",
    "engine.data.training_data",
    "engine.export.formats",
    "engine.export.package",
    "engine.export.parity",
    "engine.export.raw_input",
    "engine.frameworks.registry",
    "engine.frameworks.scikit_learn",
    "engine.frameworks.xgboost_adapter",
    "engine.monitor.resources",
    "engine.storage.artifacts",
    "engine.storage.checkpoint",
    "engine.storage.files",
    "pandas",
    "pandas.core.arrays.arrow.extension_types",
    "pyarrow.csv",
    "pyarrow.dataset",
    "pyarrow.json",
    "pyarrow.pandas_compat",
    "pyarrow.parquet",
    "sklearn.calibration",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.svm",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "xgboost",
    "onnxmltools",
    "pynvml",
)

os.nice(WORKER_NICENESS)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _name in IMPORTS:
    try:
        importlib.import_module(_name)
    except Exception:  # e.g. a framework that is not installed: its jobs import it and say why not
        pass
# What exists now is never garbage in a worker: frozen, the workers' collectors leave it alone
# instead of touching (and so copying) the memory they share with the template.
gc.freeze()
