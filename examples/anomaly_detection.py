"""Anomaly detection: an isolation forest learns normal sensor readings.

Readings are generated from a machine's normal operating point (correlated temperature,
vibration and pressure); a few faulty readings are injected and labelled, so the test
metrics show how many faults the model flags. The label is optional: without it the model
still learns what normal looks like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame


def readings(n: int, faults: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    temperature = rng.normal(70, 3, n)
    vibration = 0.02 * temperature + rng.normal(0, 0.05, n)
    pressure = 100 + 0.5 * (temperature - 70) + rng.normal(0, 1, n)
    frame = pd.DataFrame({"temperature": temperature, "vibration": vibration, "pressure": pressure, "fault": 0})
    bad = pd.DataFrame({"temperature": rng.normal(85, 6, faults), "vibration": rng.normal(2.5, 0.5, faults),
                        "pressure": rng.normal(90, 8, faults), "fault": 1})
    return pd.concat([frame, bad], ignore_index=True).sample(frac=1, random_state=seed)


def run(client, small: bool = False) -> dict:
    data = upload_frame(client, readings(1500 if small else 20000, 40 if small else 500), "sensors",
                        label_column="fault")
    train_part, test = client.split_dataset(data.name, [0.8, 0.2], seed=6, stratify_column="fault")
    job = train(client, {
        "modelType": "anomaly_detection",
        "modelConfig": {"framework": "sklearn", "architecture": "isolation_forest",
                        "hyperparameters": {"contamination": 0.03}},
        "trainingConfig": {"epochs": 4, "seed": 6},
        "dataConfig": {"trainDataset": train_part.name, "testDataset": test.name, "labelColumn": "fault"},
    })
    return {f"test_{k}": v for k, v in sorted(job.test_metrics.items())}


if __name__ == "__main__":
    main(run, __doc__)
