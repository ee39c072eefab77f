"""Time-series forecasting: an LSTM predicts tomorrow's sales from the last two weeks.

Daily sales are generated with a slow trend, a weekly cycle and noise. The data is split in
time order (no shuffling), and the model's test RMSE is compared with the naive forecast
"tomorrow equals today"; the job's test metrics also judge it as a forecast: MAPE, sMAPE and
MASE (its mean absolute error over the naive forecast's on the training series: below 1 beats
it). Every epoch's validation point carries them too (TrainingMetrics.extra). (An LSTM learns the values it has seen: a steep trend carries the
test period beyond them and the forecasts lag. Difference such a series first, or use the
day-to-day change as the label.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame

WINDOW = 14


def daily_sales(days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    sales = 200 + 0.05 * t + 25 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 5, days)
    return pd.DataFrame({"day": pd.date_range("2024-01-01", periods=days, freq="D"), "sales": sales})


def run(client, small: bool = False) -> dict:
    frame = daily_sales(400 if small else 1500)
    data = upload_frame(client, frame, "sales", label_column="sales")
    train_part, test = client.split_dataset(data.name, [0.8, 0.2], no_shuffle=True)
    job = train(client, {
        "modelType": "forecasting",
        "modelConfig": {"framework": "pytorch", "architecture": "lstm", "hyperparameters": {"hidden_size": 32}},
        "trainingConfig": {"epochs": 40 if small else 60, "batchSize": 32, "learningRate": 0.005, "seed": 7},
        "dataConfig": {"trainDataset": train_part.name, "testDataset": test.name, "labelColumn": "sales",
                       "timeColumn": "day", "windowSize": WINDOW},
    })
    cut = int(len(frame) * 0.8)
    series = frame["sales"].to_numpy()
    naive = float(np.sqrt(np.mean((series[cut:] - series[cut - 1:-1]) ** 2)))
    history = client.metric_history(job.name)
    return {"test_rmse": job.test_metrics["rmse"], "naive_rmse": naive,
            **{f"test_{k}": job.test_metrics[k] for k in ("mape", "smape", "mase")},
            "validation_mase": [p.extra["mase"] for p in history]}


if __name__ == "__main__":
    main(run, __doc__)
