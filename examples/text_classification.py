"""Text classification: route support tickets with a PyTorch text classifier.

Tickets are generated from a few phrases per team (billing, technical, shipping) mixed with
common filler words; the model embeds the words of each ticket and averages them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import main, train, upload_frame

PHRASES = {
    "billing": ["charged twice", "refund my payment", "invoice is wrong", "cancel my subscription",
                "credit card declined"],
    "technical": ["app crashes on start", "cannot log in", "error when saving", "page will not load",
                  "password reset fails"],
    "shipping": ["package has not arrived", "tracking number missing", "delivered to wrong address",
                 "parcel arrived damaged", "delivery is late"],
}
FILLER = ["hello", "please", "help", "thanks", "today", "again", "my", "the", "urgent", "hi", "team"]


def tickets(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        team = rng.choice(list(PHRASES))
        words = [*rng.choice(FILLER, 3), rng.choice(PHRASES[team]), *rng.choice(FILLER, 2)]
        rows.append((" ".join(words), team))
    return pd.DataFrame(rows, columns=["text", "team"])


def run(client, small: bool = False) -> dict:
    data = upload_frame(client, tickets(600 if small else 5000), "tickets", label_column="team")
    train_part, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=4, stratify_column="team")
    job = train(client, {
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "text_classifier",
                        "hyperparameters": {"embedding_dim": 16, "max_length": 16, "vocab_size": 500}},
        "trainingConfig": {"epochs": 8 if small else 15, "batchSize": 32, "learningRate": 0.01, "seed": 4},
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "textColumn": "text", "labelColumn": "team"},
    })
    return {f"test_{k}": v for k, v in sorted(job.test_metrics.items())}


if __name__ == "__main__":
    main(run, __doc__)
