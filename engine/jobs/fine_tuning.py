"""Fine-tuning: what model_config.pretrained_path names, resolved once when a job is created.

A job may start from
- a completed training job's model: its id or `projects/{p}/trainingJobs/{id}`;
- a registered model version trained by this service: `projects/{p}/models/{m}/versions/{v}`
  (one LoadModel registered from a file has no training state to continue from);
- a checkpoint file under the project's checkpoint directory, e.g. `churn/v1/best.ckpt` or
  `{job id}/epoch-000010.ckpt` (any epoch of any job, paused, failed or cancelled included).

The result is recorded in the job's spec (TrainingSpec.pretrained): the source's full name, the
state file with its sha256 (the worker checks it before loading), and the features and classes
the parent model was trained with (the worker checks the job's data against them, whatever the
framework). The parent must be of the job's framework, architecture and model type; its spec,
when known, records the network it was built with (engine.frameworks.neural.parent_network_spec:
TensorFlow builds the job's network from it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import names
from engine.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from engine.jobs import states
from engine.jobs.spec import TrainingSpec
from engine.storage import checkpoint

FIELD = "model_config.pretrained_path"


def resolve(spec: TrainingSpec, project: str, adapter: Any, *, get_job: Callable[[str], Any],
            get_version: Callable[[str], Any] | None, checkpoint_root: Path) -> dict[str, Any]:
    """TrainingSpec.pretrained for spec.pretrained_path (empty when it is unset); raises
    INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION naming model_config.pretrained_path."""
    value = spec.pretrained_path
    if not value:
        return {}
    if not adapter.fine_tuning:
        raise Unimplemented(f"{FIELD}: fine-tuning is implemented for pytorch, tensorflow and xgboost models, "
                            f"not {spec.framework}; train this model from scratch")
    if spec.frozen_layers and not adapter.freezes_layers:
        raise InvalidArgument.field("model_config.frozen_layers", f"{spec.framework} models have no layers to "
                                                                  "freeze; leave it empty")
    if "/models/" in value:
        found = _from_version(value, get_version, get_job)
    elif "/" not in value or "/trainingJobs/" in value:
        found = _from_job(names.resolve(value, "trainingJobs", FIELD, project), get_job)
    else:
        found = _from_checkpoint(value, project, checkpoint_root, get_job)
    parent = found.pop("spec", None) or {}
    if parent:  # the network the parent was built with, for frameworks that build from the spec
        reg = parent.get("regularization") or {}
        found["network"] = (parent.get("pretrained") or {}).get("network") or {  # a fine-tuned parent: its own
            "hyperparameters": parent.get("hyperparameters") or {}, "input_shape": parent.get("input_shape") or [],
            "dropout": reg.get("dropout", 0.0), "batch_norm": reg.get("batch_norm", False)}
    for key, words in (("framework", "framework"), ("architecture", "architecture"), ("model_type", "model type")):
        theirs = parent.get(key) or found.pop(key, None)
        if theirs and theirs != getattr(spec, key):
            raise InvalidArgument.field(FIELD, f"{found['source']} is a {theirs} {words} model; this job trains "
                                               f"{getattr(spec, key)}: fine-tune with the parent's {words}")
        found.pop(key, None)
    return found


def _from_job(name: str, get_job: Callable[[str], Any]) -> dict[str, Any]:
    try:
        row = get_job(name)
    except NotFound:
        raise NotFound(f"{FIELD}: training job {name} not found") from None
    if row.state != states.COMPLETED or not (row.artifacts or {}).get("state"):
        raise FailedPrecondition(f"{FIELD}: training job {name} is {row.state}; a job fine-tunes a completed "
                                 "job's model (or give one of its checkpoints, e.g. "
                                 f"'{names.short_id(name)}/epoch-000003.ckpt')")
    info = row.model_info or {}
    return {"source": name, "state": row.artifacts["state"], "spec": row.spec,
            "features": info.get("features"), "classes": info.get("classes")}


def _from_version(value: str, get_version: Callable[[str], Any] | None, get_job: Callable[[str], Any]) -> dict:
    from engine.models.registry import parse_version_name

    name = parse_version_name(value, FIELD)
    if get_version is None:
        raise FailedPrecondition(f"{FIELD}: this engine has no model registry")
    try:
        row = get_version(name)
    except NotFound:
        raise NotFound(f"{FIELD}: model version {name} not found") from None
    state = (row.artifacts or {}).get("state")
    if not state:
        raise FailedPrecondition(f"{FIELD}: {name} was registered from a file (LoadModel) and has no training "
                                 "state to continue from; fine-tune a version this service trained")
    spec = {}
    if row.training_job:
        try:
            spec = get_job(row.training_job).spec
        except NotFound:  # its job was deleted since; the version still holds the state
            spec = {}
    info = row.model_info or {}
    return {"source": name, "state": state, "spec": spec, "framework": row.framework,
            "model_type": row.model_type, "features": info.get("features"), "classes": info.get("classes")}


def _from_checkpoint(value: str, project: str, checkpoint_root: Path, get_job: Callable[[str], Any]) -> dict[str, Any]:
    root = (checkpoint_root / project).resolve()
    path = (root / value).resolve() if "\x00" not in value else root
    if "\x00" in value or Path(value).is_absolute() or not path.is_relative_to(root) or path == root:
        raise InvalidArgument.field(FIELD, f"{value!r} is not a training job, a model version or a checkpoint "
                                           "under the checkpoint directory: give e.g. a job id, "
                                           "'projects/p/models/m/versions/1' or 'churn/v1/best.ckpt'")
    if not path.is_file():
        raise NotFound(f"{FIELD}: no checkpoint file {value!r} in this project's checkpoint directory")
    try:
        blob = path.read_bytes()  # read once: its manifest and its checksum
        manifest, _ = checkpoint.unpack(blob)
    except Exception as exc:  # DataLoss (not a checkpoint, damaged) or unreadable
        raise FailedPrecondition(f"{FIELD}: {value!r} is not a readable checkpoint: {exc}") from None
    state = {"path": str(path), "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)}
    try:  # the job that wrote it, when it is still there, says how its network was built
        spec = get_job(manifest["job"]).spec if manifest.get("job") else {}
    except (NotFound, InvalidArgument):
        spec = {}
    return {"source": f"checkpoint:{value}", "state": state, "spec": spec,
            "framework": manifest.get("framework"), "architecture": manifest.get("architecture"),
            "model_type": manifest.get("task"), "features": manifest.get("features"),
            "classes": manifest.get("classes")}
