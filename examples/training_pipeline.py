"""Training pipeline: the seed's training_pipeline example ("Workflow 2: Training Pipeline"
with its PipelineManager): a multi-stage workflow with dependencies, made from a template.

The stages, each starting when the ones it depends on have ended:

    prepare (data_preparation: drop broken rows, split 70/15/15)
      -> validate (data_validation: the training split must pass the rules)
      -> features (feature_extraction: scaling and one-hot encoding fitted on the training split)
      -> train (model_training: scikit-learn logistic regression on the features)
      -> evaluate (model_validation: the raw test split, below a minimum accuracy the stage fails)
      -> deploy (model_deployment: the version becomes PRODUCTION; its ONNX export is copied)

1. CreateTemplate declares the stages once, with typed parameters (`${params.epochs}`,
   `${params.min_accuracy}`); CreateFromTemplate makes a pipeline from values for them.
2. ExecutePipeline returns at once with the input (the seed's PipelineInput: here the raw
   dataset, read by the first stage as `${input.dataset}`); WatchExecution streams each stage's
   start, metrics and end; a stage's outputs (`${train.model_version}`) feed the next.
3. The execution's output holds every stage's outputs (the seed's execution.Output()).
4. The same input again: every stage's inputs are unchanged, so every stage reuses its earlier
   outputs instead of running (`cached`).

Templates cannot be deleted yet, so each run creates one with a generated id.
"""

from __future__ import annotations

from _common import main, upload_frame
from dataset_management import CLEAN, RULES, orders
from forge.training import common_pb2, struct_to_dict
from forge.training.v1 import pipeline_pb2

STAGES = [
    {"id": "prepare", "type": "data_preparation",
     "parameters": {"dataset": "${input.dataset}", "filter": CLEAN,
                    "split": {"ratios": [0.7, 0.15, 0.15], "seed": 4, "stratify_column": "returned"}}},
    {"id": "validate", "type": "data_validation", "dependencies": ["prepare"],
     "parameters": {"dataset": "${prepare.train_dataset}", "rules": RULES}},
    {"id": "features", "type": "feature_extraction", "dependencies": ["prepare", "validate"],
     "parameters": {"dataset": "${prepare.train_dataset}",
                    "processing": {"transformations": [{"type": "drop_columns", "columns": ["order_id"]}],
                                   "normalization": {"method": "standard", "columns": ["amount", "items"]},
                                   "encoding": {"method": "onehot", "columns": ["country"]}}}},
    {"id": "train", "type": "model_training", "dependencies": ["features", "prepare"],
     "parameters": {"model_type": "classification", "model_id": "order-returns",
                    "model_config": {"framework": "sklearn", "architecture": "logistic_regression"},
                    "training_config": {"epochs": "${params.epochs}", "seed": 4},
                    "data_config": {"train_dataset": "${features.dataset}", "label_column": "returned"}}},
    {"id": "evaluate", "type": "model_validation", "dependencies": ["train", "prepare"],
     "parameters": {"model": "${train.model_version}", "dataset": "${prepare.test_dataset}",
                    "thresholds": {"accuracy": "${params.min_accuracy}"}}},
    {"id": "deploy", "type": "model_deployment", "dependencies": ["evaluate", "train"],
     "parameters": {"model": "${train.model_version}", "stage": "production", "format": "onnx",
                    "destination": "order-returns/"}},
]
PARAMETERS = [
    {"name": "epochs", "type": "integer", "defaultValue": 10, "description": "training epochs"},
    {"name": "min_accuracy", "type": "number", "required": True,
     "description": "the test accuracy below which the model is not deployed"},
]


def _short(kind: int) -> str:
    return pipeline_pb2.ExecutionEventType.Name(kind).removeprefix("EXECUTION_EVENT_TYPE_").lower()


def run(client, small: bool = False) -> dict:
    raw = upload_frame(client, orders(2000 if small else 20000, seed=6), "pipeline-orders", label_column="returned")
    majority_rate = max(v.count for v in raw.statistics.label_distribution) / raw.row_count  # always guessing it

    # 1. A template, and a pipeline from it.
    template = client.create_template({"displayName": "order returns", "stages": STAGES, "parameters": PARAMETERS,
                                       "description": "clean, validate, featurize, train, check, deploy"})
    pipeline = client.create_from_template(template.name, {"epochs": 5 if small else 20, "min_accuracy": 0.6})
    print(f"{pipeline.name} from {template.name}: {' -> '.join(s.id for s in pipeline.stages)}")

    # 2. Execute it on the raw data, watching its events.
    execution = client.execute_pipeline(pipeline.name, {"dataset": raw.name})
    events = []
    for event in client.watch_execution(execution.name):
        events.append(event)
        if event.type == pipeline_pb2.EXECUTION_EVENT_TYPE_STAGE_METRICS:
            continue  # one per training epoch
        print(" ".join(p for p in (f"  [{event.sequence}]", _short(event.type), event.stage_id, event.message) if p))
    done = client.get_execution(execution.name)
    if done.state != common_pb2.JOB_STATE_COMPLETED:
        raise RuntimeError(f"{done.name} ended {common_pb2.JobState.Name(done.state)}: {done.state_message}")

    # 3. Every stage's outputs.
    output = struct_to_dict(done.output)
    evaluate, deploy = output["evaluate"], output["deploy"]
    print(f"{output['train']['model_version']}: test accuracy {evaluate['accuracy']:.3f} (the majority class alone: "
          f"{majority_rate:.3f}), "
          f"deployed to {deploy['uri']} (sha256 {deploy['sha256'][:12]}...)")

    # 4. The same input again: nothing to recompute.
    again = client.wait_execution(client.execute_pipeline(pipeline.name, {"dataset": raw.name}).name, timeout=120)
    cached = sorted(s.stage_id for s in again.stages if s.cached)
    print(f"second execution: {common_pb2.JobState.Name(again.state)}, cached stages: {', '.join(cached)}")
    return {"stages": [s.stage_id for s in done.stages], "rows_after_filter": output["prepare"]["row_count"],
            "valid": output["validate"]["valid"], "test_accuracy": evaluate["accuracy"],
            "majority_rate": majority_rate, "model_version": output["train"]["model_version"],
            "deployed_stage": deploy["stage"], "deployed_uri": deploy["uri"],
            "event_kinds": sorted({_short(e.type) for e in events}), "cached_on_rerun": cached}


if __name__ == "__main__":
    main(run, __doc__)
