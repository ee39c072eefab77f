"""Fraud detection: an XGBoost classifier on imbalanced card transactions.

The data is generated: amounts, hours, merchant categories (a categorical column, one-hot
encoded by the service) and distance from home; about 3% of rows are fraud, which is more
likely at night, far from home, for large amounts and for online merchants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame


def transactions(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, n)
    hour = rng.integers(0, 24, n)
    merchant = rng.choice(["grocery", "fuel", "online", "travel", "restaurant"], n, p=[.35, .2, .2, .1, .15])
    distance = rng.exponential(10, n)
    risk = (-7.0 + 2.5 * (amount > 150) + 2.5 * ((hour < 5) | (hour > 22)) + 2.5 * (merchant == "online")
            + 0.08 * distance)
    fraud = rng.random(n) < 1 / (1 + np.exp(-risk))
    return pd.DataFrame({"amount": amount, "hour": hour, "merchant": merchant, "distance_km": distance,
                         "is_fraud": fraud.astype(int)})


def run(client, small: bool = False) -> dict:
    data = upload_frame(client, transactions(4000 if small else 40000), "transactions", label_column="is_fraud")
    train_part, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=1, stratify_column="is_fraud")
    fraud_rate = dict((v.value, v.count) for v in data.statistics.label_distribution)["1"] / data.row_count
    job = train(client, {
        "modelType": "classification",
        "modelConfig": {"framework": "xgboost", "architecture": "classifier",
                        "hyperparameters": {"max_depth": 4, "scale_pos_weight": 10}},
        "trainingConfig": {"epochs": 60 if small else 200, "learningRate": 0.1, "seed": 1,
                           "earlyStopping": {"enabled": True, "metric": "val_loss", "patience": 20,
                                             "restoreBest": True}},
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "is_fraud"},
    })
    return {"fraud_rate": fraud_rate, **{f"test_{k}": v for k, v in sorted(job.test_metrics.items())}}


if __name__ == "__main__":
    main(run, __doc__)
