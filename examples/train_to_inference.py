"""Train to inference: train a model, stream it out as ONNX, and serve predictions from raw
rows with request batching (the seed's "Complete Workflow": train, export, register in an
inference engine, serve).

The exported ONNX takes the raw feature columns, with the fitted processing (here the
imputation and scaling of a data pipeline) inside the graph, and its metadata says the
features and classes, so the inference side is forge.training.inference and nothing else.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sklearn.datasets import load_breast_cancer

from _common import main, train, upload_frame
from forge.training.inference import BatchingPredictor, Model


def run(client, small: bool = False) -> dict:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    data = upload_frame(client, frame, "cancer", label_column="target")
    train_raw, test = client.split_dataset(data.name, [0.8, 0.2], seed=8, stratify_column="target")
    # Processing fitted on the training rows only; the model trains on its output.
    pipeline = client.create_data_pipeline(
        train_raw.name, processing={"imputation": {"strategy": "median"}, "normalization": {"method": "standard"}})
    train_part = client.run_data_pipeline(pipeline.name, train_raw.name)
    job = train(client, {
        "modelType": "classification",
        "modelId": "cancer-triage",
        "modelConfig": {"framework": "sklearn", "architecture": "logistic_regression",
                        "hyperparameters": {"max_iter": 50}},
        "trainingConfig": {"epochs": 5, "seed": 8},
        "dataConfig": {"trainDataset": train_part.name, "labelColumn": "target"},
    }, verbose=not small)

    # 1. TRAINING PHASE is done: promote the version the job registered.
    client.update_model_stage(job.model_version, "production")
    # 2. INFERENCE PHASE: the inference engine loads the production version's ONNX export.
    production = next(iter(client.list_models(filter="model_id=cancer-triage AND stage=PRODUCTION")))
    model = Model.from_service(client, production.name)  # size and sha256 verified on arrival
    # 3. SERVE PREDICTIONS on raw rows the model never saw, batching concurrent requests.
    rows, _ = client.get_records(test.name, limit=10_000)
    requests = [{k: v for k, v in row.items() if k != "target"} for row in rows]
    with BatchingPredictor(model, max_batch_size=32, max_delay_ms=5) as predictor, \
            ThreadPoolExecutor(max_workers=16) as pool:
        predictions = list(pool.map(predictor.predict, requests))
        stats = predictor.stats
    accuracy = sum(str(p) == str(row["target"]) for p, row in zip(predictions, rows)) / len(rows)
    print(f"{len(rows)} requests served in {stats.batches} batches; first: class {predictions[0]} "
          f"with probabilities {model.predict_proba(requests[:1])[0]}; accuracy {accuracy:.3f}")
    return {"onnx_accuracy": accuracy, "raw_columns": model.raw_columns, "batches": stats.batches,
            "requests": len(rows)}


if __name__ == "__main__":
    main(run, __doc__)
