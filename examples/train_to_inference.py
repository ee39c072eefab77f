"""Train to inference: train a model, stream it out as ONNX, and serve predictions with
onnxruntime, the way an inference engine would (the seed's "Complete Workflow").

The export's metadata says which features the model expects, in which order, and what its
output columns mean, so nothing is guessed on the inference side.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_breast_cancer

from _common import main, train, upload_frame


def run(client, small: bool = False) -> dict:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    data = upload_frame(client, frame, "cancer", label_column="target")
    train_part, test = client.split_dataset(data.name, [0.8, 0.2], seed=8, stratify_column="target")
    job = train(client, {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "logistic_regression",
                        "hyperparameters": {"max_iter": 20}},
        "trainingConfig": {"epochs": 5, "seed": 8},
        "dataConfig": {"trainDataset": train_part.name, "labelColumn": "target"},
    }, verbose=not small)

    # 1. TRAINING PHASE is done; 2. INFERENCE PHASE: load the exported model.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        meta = client.export_model(job.name, "onnx", path)  # size and sha256 verified on arrival
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    # 3. SERVE PREDICTIONS on rows the model never saw.
    rows, _ = client.get_records(test.name, limit=10_000)
    X = np.array([[row[name] for name in meta.input_features] for row in rows], dtype=np.float32)
    label, probabilities = session.run(["label", "probabilities"], {"input": X})
    truth = np.array([row["target"] for row in rows])
    print(f"first prediction: class {label[0]} with probabilities "
          f"{dict(zip(meta.class_labels, probabilities[0].round(3)))}")
    return {"onnx_bytes": meta.size_bytes, "onnx_accuracy": float((label == truth).mean())}


if __name__ == "__main__":
    main(run, __doc__)
