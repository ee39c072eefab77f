"""Recommendation: PyTorch matrix factorization on user-item ratings.

The ratings are generated from hidden user tastes and item traits (a low-rank matrix) plus
noise, 1 to 5 stars. The model learns an embedding per user and item; its test RMSE is
compared with always predicting the average rating, and its rankings are judged as a
recommender's: NDCG@10, MAP@10 and precision@10 of each user's test items ranked by predicted
rating (an item is relevant when its rating is at least the mean training rating). Every
epoch's validation point carries them too (TrainingMetrics.extra).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame


def ratings(users: int, items: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    taste, trait = rng.normal(0, 1, (users, 3)), rng.normal(0, 1, (items, 3))
    rows = []
    for u in range(users):
        for i in rng.choice(items, per_user, replace=False):
            score = 3 + taste[u] @ trait[i] * 0.8 + rng.normal(0, 0.3)
            rows.append((f"user-{u}", f"item-{i}", float(np.clip(score, 1, 5))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def run(client, small: bool = False) -> dict:
    frame = ratings(120 if small else 600, 80 if small else 300, 30)
    data = upload_frame(client, frame, "ratings", label_column="rating")
    train_part, val, test = client.split_dataset(data.name, [0.8, 0.1, 0.1], seed=3)
    job = train(client, {
        "modelType": "recommendation",
        "modelConfig": {"framework": "pytorch", "architecture": "matrix_factorization",
                        "hyperparameters": {"embedding_dim": 8}},
        "trainingConfig": {"epochs": 25 if small else 40, "batchSize": 128, "learningRate": 0.02, "seed": 3,
                           "regularization": {"weightDecay": 1e-5}},
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "userColumn": "user_id", "itemColumn": "item_id", "labelColumn": "rating"},
    })
    rows, _ = client.get_records(test.name, limit=10_000)
    truth = np.array([r["rating"] for r in rows])
    baseline = float(np.sqrt(np.mean((truth - frame["rating"].mean()) ** 2)))
    history = client.metric_history(job.name)
    return {"test_rmse": job.test_metrics["rmse"], "baseline_rmse": baseline,
            **{f"test_{k}": job.test_metrics[k] for k in ("ndcg_at_10", "map_at_10", "precision_at_10")},
            "validation_ndcg": [p.extra["ndcg_at_10"] for p in history],
            # EvaluateModel judges any ratings dataset the same way, e.g. next month's.
            "evaluated_ndcg": client.evaluate_model(job.name, test.name).metrics["ndcg_at_10"]}


if __name__ == "__main__":
    main(run, __doc__)
