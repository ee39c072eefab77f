"""Customer churn: a PyTorch MLP with class weights on a subscriber table.

The data is generated: tenure, monthly charges, support calls, and two categorical columns
(plan, contract) that the service one-hot encodes. Month-to-month contracts, many support
calls and short tenure make churn likely.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame


def subscribers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    plan = rng.choice(["basic", "standard", "premium"], n)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[.5, .3, .2])
    calls = rng.poisson(1.5, n)
    charges = 20 + 30 * (plan == "standard") + 60 * (plan == "premium") + rng.normal(0, 5, n)
    risk = (-1.0 + 1.8 * (contract == "month-to-month") - 0.04 * tenure + 0.5 * calls
            + 0.01 * (charges - 50))
    churned = rng.random(n) < 1 / (1 + np.exp(-risk))
    return pd.DataFrame({"tenure_months": tenure, "plan": plan, "contract": contract, "support_calls": calls,
                         "monthly_charges": charges, "churned": churned.astype(int)})


def run(client, small: bool = False) -> dict:
    data = upload_frame(client, subscribers(3000 if small else 20000), "subscribers", label_column="churned")
    train_part, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=2, stratify_column="churned")
    job = train(client, {
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "mlp",
                        "hyperparameters": {"hidden_units": [32, 16], "class_weight": "balanced"}},
        "trainingConfig": {"epochs": 15 if small else 40, "batchSize": 64, "learningRate": 0.003, "seed": 2,
                           "optimizer": "adamw", "regularization": {"weightDecay": 0.01, "dropout": 0.1},
                           "lrScheduler": {"type": "cosine"}},
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "churned"},
    })
    return {f"test_{k}": v for k, v in sorted(job.test_metrics.items())}


if __name__ == "__main__":
    main(run, __doc__)
