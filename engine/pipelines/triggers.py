"""Pipeline triggers (PipelineTrigger in the proto): executions started by an event.

- "dataset_created": a dataset created in the pipeline's project (by any means: an upload, an
  import, a split, a transform...) that carries the trigger's dataset_labels starts an
  execution, with the dataset's name in its input under `dataset_input`.
- "webhook": an HTTP POST to the server's webhook listener (server/webhooks.py), signed with
  the trigger's secret as alerts are (engine/alerts/signing.py), starts an execution with the
  call's JSON object merged over the trigger's input.

Datasets made by a pipeline's stage (a split, a transform of the execution's data) trigger no
pipeline: with labels carried from dataset to dataset, two pipelines could otherwise start each
other without end.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from engine.alerts.rules import named_entries
from engine.errors import InvalidArgument, json_kind

EVENTS = ("dataset_created", "webhook")
FIELDS = ("name", "event", "dataset_labels", "input", "dataset_input", "secret", "secret_set", "paused")
MAX_TRIGGERS = 20
# The pipeline whose execution's stage runs in this thread (set by the executor around each
# stage): the datasets that stage makes trigger no pipeline.
RUNNING_PIPELINE: contextvars.ContextVar[str] = contextvars.ContextVar("running_pipeline", default="")


def read_triggers(raw: Any, field: str = "pipeline.triggers") -> list[dict[str, Any]]:
    """The triggers of `raw` (PipelineTriggers in their JSON form), checked; INVALID_ARGUMENT
    names the field."""
    triggers = []
    for where, item, name in named_entries(raw, field, "trigger", FIELDS, MAX_TRIGGERS):
        event = str(item.get("event") or "").strip().upper().removeprefix("TRIGGER_EVENT_").lower()
        if event not in EVENTS:
            raise InvalidArgument.field(f"{where}.event", f"{item.get('event')!r}: use TRIGGER_EVENT_DATASET_CREATED "
                                                          "or TRIGGER_EVENT_WEBHOOK", "REQUIRED")
        labels = item.get("dataset_labels") or {}
        if not (isinstance(labels, Mapping) and all(isinstance(v, str) for v in labels.values())):
            raise InvalidArgument.field(f"{where}.dataset_labels", "must be an object of strings")
        if labels and event != "dataset_created":
            raise InvalidArgument.field(f"{where}.dataset_labels", "filters datasets: only for dataset_created")
        execution_input = item.get("input") or {}
        if not isinstance(execution_input, Mapping):
            raise InvalidArgument.field(f"{where}.input", f"must be an object, got {json_kind(execution_input)}")
        secret = item.get("secret") or ""
        if not isinstance(secret, str):
            raise InvalidArgument.field(f"{where}.secret", f"must be text, got {json_kind(secret)}")
        if event == "webhook" and len(secret) < 16:
            raise InvalidArgument.field(f"{where}.secret", "is required for a webhook trigger: at least 16 "
                                                           "characters callers sign their calls with", "REQUIRED")
        if secret and event != "webhook":
            raise InvalidArgument.field(f"{where}.secret", "signs webhook calls: only for webhook triggers")
        triggers.append({"name": name, "event": event, "dataset_labels": dict(labels), "input": dict(execution_input),
                         "dataset_input": str(item.get("dataset_input") or "dataset"), "secret": secret,
                         "paused": bool(item.get("paused"))})
    return triggers


def fires_on(trigger: dict[str, Any], dataset_labels: dict[str, str]) -> bool:
    """Whether a dataset_created trigger fires for a dataset with these labels."""
    return (trigger["event"] == "dataset_created" and not trigger.get("paused")
            and all(dataset_labels.get(k) == v for k, v in trigger.get("dataset_labels", {}).items()))
