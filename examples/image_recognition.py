"""Image recognition: a convolutional network on scikit-learn's bundled handwritten digits.

Each 8x8 image arrives as 64 pixel columns; model_config.input_shape tells the network how
to fold them back into an image.
"""

from __future__ import annotations

from sklearn.datasets import load_digits

from _common import main, train, upload_frame


def run(client, small: bool = False) -> dict:
    digits = load_digits(as_frame=True).frame
    if small:
        digits = digits.sample(900, random_state=0)
    data = upload_frame(client, digits, "digits", label_column="target")
    train_part, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=5, stratify_column="target")
    job = train(client, {
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "cnn", "inputShape": [1, 8, 8],
                        "hyperparameters": {"filters": [16, 32], "hidden_units": [64]}},
        "trainingConfig": {"epochs": 10 if small else 20, "batchSize": 64, "learningRate": 0.003, "seed": 5,
                           "regularization": {"dropout": 0.2}},
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "target"},
    })
    return {f"test_{k}": v for k, v in sorted(job.test_metrics.items())}


if __name__ == "__main__":
    main(run, __doc__)
