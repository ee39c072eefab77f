"""Python SDK for the forge-training service.

    from forge.training import Client, ForgeTrainingError

The generated messages live in ``forge.training.v1``; the commonly used
modules are re-exported here (``from forge.training import training_job_pb2``).
"""

from forge.training.client import (
    FINAL_STATES,
    MAX_CHUNK_SIZE,
    Client,
    data_format,
    export_format,
    job_state,
    log_level,
    struct_to_dict,
    training_request,
)
from forge.training.errors import FieldViolation, ForgeTrainingError, from_rpc_error
from forge.training.v1 import (
    alert_pb2,
    common_pb2,
    data_service_pb2,
    dataset_pb2,
    metrics_pb2,
    model_pb2,
    trainer_service_pb2,
    training_job_pb2,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "FINAL_STATES",
    "FieldViolation",
    "ForgeTrainingError",
    "MAX_CHUNK_SIZE",
    "alert_pb2",
    "common_pb2",
    "data_format",
    "data_service_pb2",
    "dataset_pb2",
    "export_format",
    "from_rpc_error",
    "job_state",
    "log_level",
    "metrics_pb2",
    "model_pb2",
    "struct_to_dict",
    "trainer_service_pb2",
    "training_job_pb2",
    "training_request",
    "__version__",
]
