import copy
import io
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import FailedPrecondition, InvalidArgument
from engine.export.parity import check_parity, onnx_predict
from engine.frameworks.base import TrainingData
from engine.frameworks.pytorch_adapter import PyTorchAdapter, build_module
from engine.jobs.spec import TrainingSpec

REPO = Path(__file__).resolve().parents[4]
adapter = PyTorchAdapter()


# The cancer, iris and diabetes fixtures come from conftest.py.
DIABETES_ROWS = 300


def make_spec(model_type="classification", epochs=3, hyperparameters=None, **config):
    raw = {"framework": "pytorch", "architecture": "mlp", "model_type": model_type, "epochs": epochs,
           "batch_size": 64, "hyperparameters": {"hidden_units": [16], **(hyperparameters or {})}, "seed": 7,
           **config}
    return TrainingSpec.from_dict(raw)


def train(spec, data, until=None):
    run = adapter.create_run(spec, data)
    results = [run.train_epoch(epoch) for epoch in range(1, (until or run.total_epochs) + 1)]
    return run, results


def _params(run):
    return {k: v.detach().clone() for k, v in run.module.state_dict().items()}


# --- training ---


def test_breast_cancer_reaches_90_percent_accuracy(cancer):
    run, results = train(make_spec(epochs=15), cancer)
    last = results[-1].metrics
    assert set(last) == {"training_loss", "validation_loss", "accuracy", "precision", "recall", "f1_score",
                         "learning_rate", "gradient_norm"}
    assert last["accuracy"] > 0.9
    assert last["validation_loss"] < 0.5 * results[0].metrics["validation_loss"]
    assert all(np.isfinite(r.metrics["gradient_norm"]) and r.metrics["gradient_norm"] > 0 for r in results)
    assert "training on cpu (resources.gpu is 0)" in results[0].logs
    assert "training on cpu (resources.gpu is 0)" not in results[1].logs
    # 426 training rows in batches of 64
    assert results[0].extra["batches"] == 7
    assert run.class_labels == [0, 1]


def test_validation_loss_is_the_log_loss_of_the_probabilities(cancer):
    from sklearn.metrics import log_loss

    run, results = train(make_spec(epochs=2), cancer)
    proba = run._predictions(cancer.X_val)
    assert results[-1].metrics["validation_loss"] == pytest.approx(log_loss(cancer.y_val, proba), rel=1e-5)


def test_binary_cross_entropy_has_one_logit_and_learns(cancer):
    run, results = train(make_spec(epochs=10, loss_function="binary_cross_entropy", learning_rate=0.01), cancer)
    assert run.module[-1].out_features == 1
    assert results[-1].metrics["accuracy"] > 0.9


def test_multiclass_has_a_logit_per_class_and_learns(iris):
    run, results = train(make_spec(epochs=15, learning_rate=0.02), iris)
    assert run.module[-1].out_features == 3
    assert results[-1].metrics["accuracy"] > 0.85


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regression_losses_are_reported_in_target_units(loss, diabetes):
    run, results = train(make_spec("regression", epochs=8, loss_function=loss, learning_rate=0.01), diabetes)
    m = results[-1].metrics
    assert set(m) == {"training_loss", "validation_loss", "rmse", "mae", "r2", "learning_rate", "gradient_norm"}
    assert m["r2"] > 0.2
    error = run._predictions(diabetes.X_val) - diabetes.y_val
    delta = np.std(diabetes.y_train)  # huber in standardized units is huber with delta = std in target units
    expected = {
        "mse": np.mean(error ** 2),
        "mae": np.mean(np.abs(error)),
        "huber": np.mean(np.where(np.abs(error) < delta, 0.5 * error ** 2, delta * (np.abs(error) - 0.5 * delta))),
    }[loss]
    assert m["validation_loss"] == pytest.approx(expected, rel=1e-4)
    assert m["rmse"] ** 2 == pytest.approx(np.mean(error ** 2), rel=1e-4)


def test_regressors_rescale_to_target_units(diabetes):
    run = adapter.create_run(make_spec("regression"), diabetes)
    rescale = run.module[-1]
    assert type(rescale).__name__ == "Rescale"
    assert float(rescale.mean) == pytest.approx(np.mean(diabetes.y_train), rel=1e-6)
    assert float(rescale.std) == pytest.approx(np.std(diabetes.y_train), rel=1e-6)


@pytest.mark.parametrize("optimizer, options, cls, expected", [
    ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7}, "Adam", {"betas": (0.8, 0.99), "eps": 1e-7}),
    ("adamw", {}, "AdamW", {"weight_decay": 0.01}),
    ("sgd", {"momentum": 0.9, "nesterov": True}, "SGD", {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"rho": 0.9, "momentum": 0.5}, "RMSprop", {"alpha": 0.9, "momentum": 0.5}),
])
def test_each_optimizer_trains(optimizer, options, cls, expected, cancer):
    regularization = {"weight_decay": 0.01} if optimizer == "adamw" else {}
    spec = make_spec(epochs=3, optimizer=optimizer, optimizer_config=options, learning_rate=0.01,
                     regularization=regularization)
    run, results = train(spec, cancer)
    assert type(run._optimizer).__name__ == cls
    group = run._optimizer.param_groups[0]
    assert {k: group[k] for k in expected} == expected
    assert results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"]
    assert results[-1].metrics["accuracy"] > 0.85


def test_l2_becomes_the_optimizer_weight_decay(cancer):
    run = adapter.create_run(make_spec(regularization={"l2": 0.05}), cancer)
    assert run._optimizer.param_groups[0]["weight_decay"] == 0.05


def test_step_schedule_changes_the_learning_rate_at_the_step(cancer):
    spec = make_spec(epochs=5, learning_rate=0.01, lr_scheduler={"type": "step", "step_size": 2, "gamma": 0.5})
    run, results = train(spec, cancer)
    assert [r.metrics["learning_rate"] for r in results] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])
    assert run._optimizer.param_groups[0]["lr"] == pytest.approx(0.0025)


def test_gradient_clipping_bounds_the_step(cancer):
    # One batch per epoch and plain SGD: the step is lr * clipped gradient, so its norm is at most lr * clip.
    spec = make_spec(epochs=1, optimizer="sgd", learning_rate=1.0, batch_size=1000,
                     regularization={"gradient_clip_norm": 1e-3})
    run = adapter.create_run(spec, cancer)
    before = _params(run)
    result = run.train_epoch(1)
    after = _params(run)
    parameters = [name for name, _ in run.module.named_parameters()]
    step = torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in parameters))
    assert result.metrics["gradient_norm"] > 1e-2  # reported before clipping
    assert float(step) == pytest.approx(1e-3, rel=1e-4)


def test_gradient_accumulation_equals_one_big_batch(cancer):
    # 384 rows: six batches of 64 accumulated are one step on the mean gradient of all 384.
    data = copy.copy(cancer)
    data.X_train, data.y_train = cancer.X_train[:384], cancer.y_train[:384]
    spec = dict(epochs=3, optimizer="sgd", learning_rate=0.05)
    accumulated, acc_results = train(make_spec(**spec, gradient_accumulation_steps=6), data)
    whole, whole_results = train(make_spec(**spec, batch_size=384), data)
    for name, value in _params(whole).items():
        torch.testing.assert_close(_params(accumulated)[name], value, rtol=0, atol=1e-6)
    assert acc_results[-1].metrics["training_loss"] == pytest.approx(whole_results[-1].metrics["training_loss"],
                                                                     rel=1e-5)
    # without accumulation the same batches take six steps and end elsewhere
    stepped, _ = train(make_spec(**spec), data)
    assert not torch.allclose(_params(stepped)["1.weight"], _params(whole)["1.weight"], atol=1e-4)


def test_l1_penalty_shrinks_the_weights(cancer):
    def weight_mass(run):
        return sum(float(m.weight.detach().abs().sum()) for m in run.module if isinstance(m, torch.nn.Linear))

    plain, _ = train(make_spec(epochs=4, learning_rate=0.01), cancer)
    sparse, results = train(make_spec(epochs=4, learning_rate=0.01, regularization={"l1": 0.01}), cancer)
    assert weight_mass(sparse) < 0.8 * weight_mass(plain)
    # the reported losses leave the penalty out
    assert results[-1].metrics["training_loss"] < 1.0


def test_class_weights_weigh_the_loss(cancer):
    spec = make_spec(epochs=1, hyperparameters={"class_weight": {"0": 4.0, "1": 1.0}})
    run, results = train(spec, cancer)
    proba = run._predictions(cancer.X_val)
    weights = np.where(cancer.y_val == 0, 4.0, 1.0)
    picked = proba[np.arange(len(proba)), cancer.y_val]
    expected = np.sum(weights * -np.log(picked)) / np.sum(weights)
    assert results[0].metrics["validation_loss"] == pytest.approx(expected, rel=1e-5)
    balanced = adapter.create_run(make_spec(hyperparameters={"class_weight": "balanced"}), cancer)
    counts = np.bincount(cancer.y_train)
    np.testing.assert_allclose(balanced._class_weights.numpy(), len(cancer.y_train) / (2 * counts), rtol=1e-6)
    with pytest.raises(InvalidArgument) as err:
        adapter.create_run(make_spec(hyperparameters={"class_weight": {"7": 1.0}}), cancer)
    assert err.value.violations[0].field == "model_config.hyperparameters.class_weight"


def test_dropout_and_batch_norm_change_the_module(cancer):
    def layer_types(**config):
        spec = make_spec(hyperparameters={"hidden_units": [16, 8], "activation": "tanh"}, **config)
        return [type(m).__name__ for m in adapter.create_run(spec, cancer).module]

    assert layer_types() == ["Standardize", "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert layer_types(regularization={"dropout": 0.3, "batch_norm": True}) == [
        "Standardize", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "Tanh", "Dropout",
        "Linear"]


def test_features_are_standardized_inside_the_network(cancer):
    run = adapter.create_run(make_spec(), cancer)
    standardize = run.module[0]
    np.testing.assert_allclose(standardize.mean.numpy(), cancer.X_train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(standardize.std.numpy(), cancer.X_train.std(axis=0), rtol=1e-6)
    assert {"0.mean", "0.std"} <= set(run.module.state_dict())


def test_batch_norm_never_sees_a_single_row_batch(cancer):
    data = copy.copy(cancer)
    data.X_train, data.y_train = cancer.X_train[:129], cancer.y_train[:129]  # 64 + 64 + 1
    _, results = train(make_spec(epochs=1, regularization={"batch_norm": True}), data)
    assert results[0].extra["batches"] == 2


def test_seed_makes_runs_reproducible(cancer):
    spec = make_spec(epochs=2, regularization={"dropout": 0.2})
    a, ra = train(spec, cancer)
    b, rb = train(spec, cancer)
    assert ra[-1].metrics == rb[-1].metrics
    c, _ = train(make_spec(epochs=2, seed=8, regularization={"dropout": 0.2}), cancer)
    assert torch.equal(_params(a)["1.weight"], _params(b)["1.weight"])
    assert not torch.equal(_params(a)["1.weight"], _params(c)["1.weight"])


def test_each_epoch_has_its_own_shuffle_from_seed_and_epoch(cancer):
    run = adapter.create_run(make_spec(), cancer)
    first, second = run.epoch_order(1), run.epoch_order(2)
    assert sorted(first.tolist()) == list(range(len(cancer.y_train)))
    assert not torch.equal(first, second)
    run.train_epoch(1)
    assert torch.equal(adapter.create_run(make_spec(), cancer).epoch_order(2), second)
    assert not torch.equal(adapter.create_run(make_spec(seed=8), cancer).epoch_order(2), second)


def test_mixed_precision_is_ignored_on_cpu(cancer):
    _, results = train(make_spec(epochs=1, mixed_precision=True), cancer)
    assert "mixed_precision is ignored on cpu: training runs in float32" in results[0].logs
    assert np.isfinite(results[0].metrics["training_loss"])


def test_without_validation_data_metrics_use_the_training_data(cancer):
    data = copy.copy(cancer)
    data.X_val = data.y_val = None
    run, results = train(make_spec(epochs=2), data)
    note = "no validation data: validation metrics are computed on the training data"
    assert note in results[0].logs and note not in results[1].logs
    assert results[1].metrics["validation_loss"] == pytest.approx(
        run.evaluate(cancer.X_train, cancer.y_train)["validation_loss"])
    check_parity(run.export("onnx"), run._predictions(cancer.X_train), cancer.X_train, atol=1e-4)


def test_evaluate_matches_the_epoch_metrics(cancer, diabetes):
    run, results = train(make_spec(epochs=2), cancer)
    expected = {k: v for k, v in results[-1].metrics.items()
                if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert run.evaluate(cancer.X_val, cancer.y_val) == pytest.approx(expected)
    run, _ = train(make_spec("regression", epochs=1), diabetes)
    assert set(run.evaluate(diabetes.X_val, diabetes.y_val)) == {"validation_loss", "rmse", "mae", "r2"}


def test_untrained_runs_cannot_export_or_evaluate(cancer):
    run = adapter.create_run(make_spec(), cancer)
    for call in (lambda: run.export("onnx"), lambda: run.evaluate(cancer.X_val, cancer.y_val),
                 lambda: run.class_labels, lambda: run.predict(cancer.X_val)):
        with pytest.raises(FailedPrecondition):
            call()


def test_epochs_must_come_in_order(cancer):
    run = adapter.create_run(make_spec(epochs=1), cancer)
    with pytest.raises(ValueError, match="next is 1"):
        run.train_epoch(2)
    run.train_epoch(1)
    with pytest.raises(ValueError, match="complete"):
        run.train_epoch(2)


def test_versions():
    v = adapter.versions()
    assert set(v) == {"torch", "numpy", "onnx", "python"}
    # Plain str, not torch's TorchVersion: the worker sends them to the server, where unpickling a
    # TorchVersion would import torch.
    assert all(type(x) is str and x[0].isdigit() for x in v.values())
    assert b"torch.torch_version" not in pickle.dumps(v)


# --- export ---


@pytest.mark.parametrize("dataset, config", [
    ("cancer", {}),
    ("cancer", {"loss_function": "binary_cross_entropy", "regularization": {"batch_norm": True, "dropout": 0.2}}),
    ("iris", {"hyperparameters": {"hidden_units": [16, 8], "activation": "gelu"}}),
])
def test_onnx_probabilities_match_the_network(dataset, config, request):
    data = request.getfixturevalue(dataset)
    run, _ = train(make_spec(epochs=2, **config), data)
    onnx_bytes = run.export("onnx")
    out = onnx_predict(onnx_bytes, data.X_val)
    assert set(out) == {"probabilities"}
    assert out["probabilities"].shape == (len(data.X_val), len(data.classes))
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert check_parity(onnx_bytes, run._predictions(data.X_val), data.X_val, atol=1e-4) < 1e-5
    # the batch axis is dynamic
    assert onnx_predict(onnx_bytes, data.X_val[:1])["probabilities"].shape == (1, len(data.classes))


def test_onnx_regression_predictions_match_the_network(diabetes):
    import onnx

    run, _ = train(make_spec("regression", epochs=2, regularization={"batch_norm": True}), diabetes)
    onnx_bytes = run.export("onnx")
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["variable"]
    assert onnx_predict(onnx_bytes, diabetes.X_val)["variable"].shape == (len(diabetes.X_val), 1)
    check_parity(onnx_bytes, run._predictions(diabetes.X_val), diabetes.X_val, atol=0.0, rtol=1e-5)


def test_a_failed_onnx_check_fails_the_export(cancer, monkeypatch):
    run, _ = train(make_spec(epochs=1), cancer)
    honest = run._predictions
    monkeypatch.setattr(run, "_predictions", lambda X: np.clip(honest(X) + [0.01, -0.01], 0, 1))
    with pytest.raises(RuntimeError, match=r"^ONNX export check failed: max difference 0\.01 > tolerance 0\.0001$"):
        run.export("onnx")


def test_torch_export_rebuilds_the_module(cancer):
    data = copy.copy(cancer)
    names = np.array(["benign", "malignant"])
    data.y_train, data.y_val = names[cancer.y_train], names[cancer.y_val]
    data.classes = ["benign", "malignant"]
    spec = make_spec(epochs=2, hyperparameters={"hidden_units": [16, 8]},
                     regularization={"dropout": 0.1, "batch_norm": True})
    run, _ = train(spec, data)
    saved = torch.load(io.BytesIO(run.export("torch")), weights_only=True)
    config = saved["config"]
    assert config == {
        "framework": "pytorch", "architecture": "mlp", "task": "classification", "n_features": 30,
        "feature_names": data.feature_names, "hidden_units": [16, 8], "activation": "relu", "dropout": 0.1,
        "batch_norm": True, "n_outputs": 2, "classes": ["benign", "malignant"]}
    module = build_module(config)
    module.load_state_dict(saved["state_dict"])
    module.eval()
    X = torch.as_tensor(data.X_val, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(module(X), run.module.eval()(X), rtol=0, atol=0)
    assert run.class_labels == ["benign", "malignant"]
    assert run.evaluate(data.X_val, data.y_val)["accuracy"] > 0.5


def test_export_rejects_other_formats(cancer):
    run, _ = train(make_spec(epochs=1), cancer)
    assert run.export_formats == ["onnx", "torch"]
    for fmt in ("pickle", "savedmodel", "bogus"):
        with pytest.raises(InvalidArgument) as err:
            run.export(fmt)
        assert err.value.violations[0].field == "format"


# --- checkpoints ---


@pytest.mark.parametrize("model_type, config", [
    ("classification", {"regularization": {"dropout": 0.3, "batch_norm": True},
                        "lr_scheduler": {"type": "step", "step_size": 2, "gamma": 0.5}}),
    ("regression", {"optimizer": "sgd", "optimizer_config": {"momentum": 0.9}, "loss_function": "huber",
                    "gradient_accumulation_steps": 2, "regularization": {"l1": 0.001, "gradient_clip_norm": 1.0},
                    "lr_scheduler": {"type": "reduce_on_plateau", "patience": 1, "metric": "gradient_norm"}}),
])
def test_resumed_run_equals_an_uninterrupted_one(model_type, config, iris, diabetes):
    data = iris if model_type == "classification" else diabetes
    spec = make_spec(model_type, epochs=6, learning_rate=0.01, **config)
    first, _ = train(spec, data, until=3)
    state = first.state_bytes()
    whole, whole_results = train(spec, data)
    torch.rand(100)  # other users of torch's global generator do not change a run's dropout
    resumed = PyTorchAdapter().load_run(spec, copy.deepcopy(data), state)
    assert resumed.epoch == 3
    resumed_results = [resumed.train_epoch(epoch) for epoch in range(4, 7)]

    for got, want in zip(resumed_results, whole_results[3:]):
        assert got.metrics == want.metrics  # exact on cpu
    for name, value in _params(whole).items():
        torch.testing.assert_close(_params(resumed)[name], value, rtol=0, atol=0)
    assert resumed._schedule.state_dict() == whole._schedule.state_dict()


def test_checkpoints_load_with_weights_only(cancer):
    run, _ = train(make_spec(epochs=1, optimizer="sgd", optimizer_config={"momentum": 0.9}), cancer)
    state = torch.load(io.BytesIO(run.state_bytes()), weights_only=True)
    assert state["epoch"] == 1 and set(state) >= {"model", "optimizer", "schedule", "rng", "config"}
    assert isinstance(state["rng"]["cpu"], torch.Tensor)


def test_restore_rejects_another_network(cancer):
    run, _ = train(make_spec(epochs=1), cancer)
    with pytest.raises(FailedPrecondition, match="hidden_units"):
        adapter.load_run(make_spec(hyperparameters={"hidden_units": [8]}), cancer, run.state_bytes())
    with pytest.raises(FailedPrecondition, match="not a pytorch adapter checkpoint"):
        adapter.load_run(make_spec(), cancer, b"not a checkpoint")


# --- other architectures: cnn, text_classifier, lstm, matrix_factorization ---


def arch_spec(architecture, model_type, epochs=3, hyperparameters=None, **config):
    raw = {"framework": "pytorch", "architecture": architecture, "model_type": model_type, "epochs": epochs,
           "batch_size": 64, "hyperparameters": hyperparameters or {}, "seed": 7, **config}
    return TrainingSpec.from_dict(raw)


POSITIVE = "good great excellent wonderful happy love fine superb".split()
NEGATIVE = "bad awful terrible poor sad hate horrible worse".split()
NEUTRAL = "the a movie film was is it this and of plot actor".split()


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return TrainingData("classification", [f"pixel{i}" for i in range(64)], "digit", X_train, y_train, X_val, y_val,
                        list(range(10)))


@pytest.fixture(scope="module")
def reviews():
    """200 texts: six neutral words and two of the label's words, shuffled."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(200):
        positive = i % 2 == 1
        words = [*rng.choice(NEUTRAL, 6), *rng.choice(POSITIVE if positive else NEGATIVE, 2)]
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
        labels.append("pos" if positive else "neg")
    texts, labels = np.array(texts, dtype=object), np.array(labels, dtype=object)
    return TrainingData("classification", ["review"], "sentiment", texts[:160], labels[:160], texts[160:],
                        labels[160:], ["neg", "pos"], input_kind="text")


@pytest.fixture(scope="module")
def sine():
    """A noisy sine of 400 points as windows of 12 past values; the last 20% validate."""
    rng = np.random.default_rng(1)
    series = np.sin(2 * np.pi * np.arange(400) / 25) + rng.normal(0, 0.1, 400)
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], 12).copy()
    y = series[12:]
    cut = int(len(y) * 0.8)
    data = TrainingData("forecasting", [f"y_lag_{12 - k}" for k in range(12)], "y", X[:cut], y[:cut], X[cut:],
                        y[cut:], input_kind="sequence")
    data.series_std = float(series.std())
    return data


@pytest.fixture(scope="module")
def ratings():
    """800 ratings of 50 users x 40 items: 3 + user and item biases + a rank-2 product + noise."""
    rng = np.random.default_rng(2)
    users, items = 50, 40
    user_factors, item_factors = rng.normal(0, 1, (users, 2)), rng.normal(0, 1, (items, 2))
    user_bias, item_bias = rng.normal(0, 0.5, users), rng.normal(0, 0.5, items)
    cells = rng.choice(users * items, 800, replace=False)
    u, i = cells // items, cells % items
    y = 3 + user_bias[u] + item_bias[i] + (user_factors[u] * item_factors[i]).sum(axis=1) + rng.normal(0, 0.2, 800)
    X = np.array([[f"user{a}", f"item{b}"] for a, b in zip(u, i)], dtype=object)
    return TrainingData("recommendation", ["user", "item"], "rating", X[:640], y[:640], X[640:], y[640:],
                        input_kind="interactions")


# Small, fast settings of each architecture, and the fixture it trains on.
ARCH_CASES = {
    "cnn": ("digits", dict(model_type="classification", input_shape=[1, 8, 8], learning_rate=0.01,
                           hyperparameters={"filters": [8]})),
    "text_classifier": ("reviews", dict(model_type="classification", learning_rate=0.01,
                                        hyperparameters={"embedding_dim": 16, "max_length": 16},
                                        data={"text_column": "review"})),
    "lstm": ("sine", dict(model_type="forecasting", learning_rate=0.01, batch_size=32)),
    "matrix_factorization": ("ratings", dict(model_type="recommendation", learning_rate=0.02)),
}


def case(architecture, request, epochs=3, **changes):
    fixture, config = ARCH_CASES[architecture]
    config = {**copy.deepcopy(config), **changes}
    return arch_spec(architecture, epochs=epochs, **config), request.getfixturevalue(fixture)


def _onnx_run(onnx_bytes, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": inputs})[0]


def test_cnn_classifies_held_out_digits(digits):
    spec = arch_spec("cnn", "classification", epochs=5, input_shape=[1, 8, 8], learning_rate=0.01,
                     hyperparameters={"filters": [8]})
    run, results = train(spec, digits)
    last = results[-1].metrics
    assert last["accuracy"] > 0.9
    assert set(last) == {"training_loss", "validation_loss", "accuracy", "precision", "recall", "f1_score",
                         "learning_rate", "gradient_norm"}
    assert [type(m).__name__ for m in run.module] == [
        "Standardize", "Unflatten", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    assert run.module[2].padding == (1, 1) and run.module[-1].out_features == 10
    assert run.input_preprocessing == {}
    expected = {k: v for k, v in last.items() if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert run.evaluate(digits.X_val, digits.y_val) == pytest.approx(expected)


def test_cnn_layers_follow_filters_batch_norm_and_the_image_size(digits):
    spec = arch_spec("cnn", "classification", input_shape=[8, 8], regularization={"batch_norm": True, "dropout": 0.2},
                     hyperparameters={"filters": [4, 4, 4, 4], "kernel_size": 5, "hidden_units": [16, 8],
                                      "activation": "tanh"})
    module = adapter.create_run(spec, digits).module
    names = [type(m).__name__ for m in module]
    # 8x8 pools to 4x4, 2x2, 1x1; the fourth convolution has nothing left to pool
    assert names == ["Standardize", "Unflatten"] + ["Conv2d", "BatchNorm2d", "Tanh", "MaxPool2d"] * 3 + [
        "Conv2d", "BatchNorm2d", "Tanh", "Flatten", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear",
        "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert module[1].unflattened_size == (1, 8, 8) and module[2].kernel_size == (5, 5)
    defaults = adapter.create_run(arch_spec("cnn", "classification", input_shape=[1, 8, 8]), digits)
    assert [m.out_channels for m in defaults.module if isinstance(m, torch.nn.Conv2d)] == [16, 32]
    assert [m.out_features for m in defaults.module if isinstance(m, torch.nn.Linear)] == [64, 10]


def test_cnn_input_shape_must_cover_the_pixel_columns(digits):
    spec = arch_spec("cnn", "classification", input_shape=[1, 7, 7])
    violation = _violation(lambda: adapter.create_run(spec, digits))
    assert violation.field == "model_config.input_shape"
    assert "49" in violation.description and "64" in violation.description


def test_text_classifier_learns_the_word_lists(reviews, request):
    spec, _ = case("text_classifier", request, epochs=10)
    run, results = train(spec, reviews)
    assert results[-1].metrics["accuracy"] > 0.9
    prep = run.input_preprocessing
    assert set(prep) == {"vocabulary", "max_length", "tokenizer"}
    assert prep["max_length"] == 16 and prep["tokenizer"] == "engine.data.text"
    assert sorted(prep["vocabulary"]) == sorted(POSITIVE + NEGATIVE + NEUTRAL)
    assert run.module.embedding.num_embeddings == len(prep["vocabulary"]) + 2
    json.dumps(prep)
    # the padding embedding stays zero; a text is the mean of its tokens' embeddings
    assert torch.count_nonzero(run.module.embedding.weight[0]) == 0
    ids = run.model_inputs(np.array(["Great movie", "", "unheard words"], dtype=object))
    assert ids.dtype == np.int64 and ids.shape == (3, 16)
    vocabulary = prep["vocabulary"]
    assert ids[0, :3].tolist() == [vocabulary.index("great") + 2, vocabulary.index("movie") + 2, 0]
    assert ids[1].tolist() == [0] * 16 and ids[2, :3].tolist() == [1, 1, 0]
    proba = run._predictions(np.array(["great wonderful love", "awful terrible hate", ""], dtype=object))
    assert proba[0, 1] > 0.5 > proba[1, 1] and np.allclose(proba.sum(axis=1), 1)
    expected = {k: v for k, v in results[-1].metrics.items()
                if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert run.evaluate(reviews.X_val, reviews.y_val) == pytest.approx(expected)


def test_lstm_forecasts_a_noisy_sine(sine, request):
    spec, _ = case("lstm", request, epochs=8)
    run, results = train(spec, sine)
    last = results[-1].metrics
    assert set(last) == {"training_loss", "validation_loss", "rmse", "mae", "r2", "learning_rate", "gradient_norm"}
    assert last["rmse"] < 0.5 * sine.series_std
    assert last["validation_loss"] == pytest.approx(last["rmse"] ** 2, rel=1e-4)  # mse, in series units
    assert float(run.module.mean) == pytest.approx(sine.X_train.mean(), rel=1e-5)
    assert float(run.module.std) == pytest.approx(sine.X_train.std(), rel=1e-5)
    assert run.module.lstm.hidden_size == 32 and run.module.lstm.num_layers == 1
    assert run.input_preprocessing == {}
    expected = {k: v for k, v in last.items() if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert run.evaluate(sine.X_val, sine.y_val) == pytest.approx(expected)


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_lstm_takes_other_regression_losses(loss, sine, request):
    spec, _ = case("lstm", request, epochs=2, loss_function=loss,
                   hyperparameters={"hidden_size": 8, "num_layers": 2}, regularization={"dropout": 0.1})
    run, results = train(spec, sine)
    assert run.module.lstm.num_layers == 2 and run.module.lstm.dropout == 0.1
    assert results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"] * 1.5
    assert np.isfinite(results[-1].metrics["rmse"])


def test_matrix_factorization_beats_the_global_mean(ratings, request):
    spec, _ = case("matrix_factorization", request, epochs=30)
    run, results = train(spec, ratings)
    baseline = float(np.sqrt(np.mean((ratings.y_val - ratings.y_train.mean()) ** 2)))
    assert results[-1].metrics["rmse"] < 0.7 * baseline
    assert set(results[-1].metrics) == {"training_loss", "validation_loss", "rmse", "mae", "r2", "learning_rate",
                                        "gradient_norm"}
    prep = run.input_preprocessing
    users = sorted(set(ratings.X_train[:, 0]))
    assert prep["user_index"] == {u: i for i, u in enumerate(users, start=1)}
    assert sorted(prep["item_index"].values()) == list(range(1, len(prep["item_index"]) + 1))
    json.dumps(prep)
    assert run.module.user_factors.embedding_dim == 16
    expected = {k: v for k, v in results[-1].metrics.items()
                if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert run.evaluate(ratings.X_val, ratings.y_val) == pytest.approx(expected)


def test_matrix_factorization_predicts_unknown_ids(ratings, request):
    spec, _ = case("matrix_factorization", request, epochs=3, regularization={"weight_decay": 0.1},
                   optimizer="adamw")
    run, _ = train(spec, ratings)
    module = run.module
    for table in (module.user_factors, module.item_factors, module.user_bias, module.item_bias):
        assert torch.count_nonzero(table.weight[0]) == 0  # index 0 (unknown) is never trained
    user, item = ratings.X_train[0]
    X = np.array([["stranger", item], [user, "novelty"], ["stranger", "novelty"]], dtype=object)
    np.testing.assert_array_equal(run.model_inputs(X)[:, 0] == 0, [True, False, True])
    prediction = run._predictions(X)
    mean = float(module.global_mean)
    item_bias = float(module.item_bias.weight[run.input_preprocessing["item_index"][item], 0].detach())
    user_bias = float(module.user_bias.weight[run.input_preprocessing["user_index"][user], 0].detach())
    np.testing.assert_allclose(prediction, [mean + item_bias, mean + user_bias, mean], rtol=1e-6)
    assert mean == pytest.approx(ratings.y_train.mean())
    assert set(run.evaluate(X, np.array([3.0, 3.0, 3.0]))) == {"validation_loss", "rmse", "mae", "r2"}


def _without_training_rows(data):
    """The data as engine/jobs/evaluate.py builds it to load a model: no rows, the same layout."""
    empty = copy.copy(data)
    empty.X_train, empty.y_train = data.X_train[:0], data.y_train[:0]
    empty.X_val = empty.y_val = None
    empty.inference_only = True
    return empty


@pytest.mark.parametrize("architecture", ["mlp", *ARCH_CASES])
def test_a_run_loaded_without_training_rows_predicts_as_the_trained_one(architecture, request, cancer):
    if architecture == "mlp":
        spec, data = make_spec(epochs=1), cancer
    else:
        spec, data = case(architecture, request, epochs=1)
    run, _ = train(spec, data)
    loaded = adapter.load_run(spec, _without_training_rows(data), run.state_bytes())
    predicted = loaded.predict(data.X_val)
    np.testing.assert_array_equal(predicted.values, run.predict(data.X_val).values)
    if run.class_labels is not None:
        np.testing.assert_array_equal(predicted.probabilities, run._predictions(data.X_val))
        assert predicted.values.tolist() == [run.class_labels[k] for k in np.argmax(predicted.probabilities, 1)]
    else:
        assert predicted.probabilities is None
        np.testing.assert_array_equal(predicted.values, run._predictions(data.X_val))
    assert loaded.evaluate(data.X_val, data.y_val) == pytest.approx(run.evaluate(data.X_val, data.y_val))


RESUME_CHANGES = {
    "cnn": {"regularization": {"dropout": 0.3, "batch_norm": True}, "hyperparameters": {"filters": [4, 8]},
            "lr_scheduler": {"type": "step", "step_size": 2, "gamma": 0.5}},
    "text_classifier": {"regularization": {"dropout": 0.3}, "optimizer": "rmsprop",
                        "hyperparameters": {"embedding_dim": 8, "max_length": 12}},
    "lstm": {"regularization": {"dropout": 0.2, "gradient_clip_norm": 0.5}, "loss_function": "huber",
             "hyperparameters": {"hidden_size": 8, "num_layers": 2}, "gradient_accumulation_steps": 2},
    "matrix_factorization": {"optimizer": "sgd", "optimizer_config": {"momentum": 0.9}, "learning_rate": 0.05,
                             "regularization": {"l2": 0.001, "l1": 1e-4},
                             "hyperparameters": {"embedding_dim": 4}},
}


@pytest.mark.parametrize("architecture", list(ARCH_CASES))
def test_resumed_runs_of_each_architecture_equal_uninterrupted_ones(architecture, request):
    spec, data = case(architecture, request, epochs=4, **RESUME_CHANGES[architecture])
    first, _ = train(spec, data, until=2)
    state = first.state_bytes()
    whole, whole_results = train(spec, data)
    torch.rand(100)  # other users of torch's global generator do not change a run's dropout
    resumed = PyTorchAdapter().load_run(spec, copy.deepcopy(data), state)
    assert resumed.epoch == 2
    resumed_results = [resumed.train_epoch(epoch) for epoch in (3, 4)]
    for got, want in zip(resumed_results, whole_results[2:]):
        assert got.metrics == want.metrics  # exact on cpu
    for name, value in _params(whole).items():
        torch.testing.assert_close(_params(resumed)[name], value, rtol=0, atol=0)


def test_restore_rejects_a_checkpoint_of_other_inputs(reviews, ratings, request):
    spec, _ = case("text_classifier", request, epochs=1)
    run, _ = train(spec, reviews)
    other = copy.copy(reviews)
    other.X_train = np.array([t + " extra words here" for t in reviews.X_train], dtype=object)
    with pytest.raises(FailedPrecondition, match="vocabulary"):
        adapter.load_run(spec, other, run.state_bytes())
    spec, _ = case("matrix_factorization", request, epochs=1)
    with pytest.raises(FailedPrecondition, match="architecture"):
        adapter.load_run(spec, ratings, run.state_bytes())


ONNX_INPUTS = {  # architecture -> (ONNX input type, columns, output)
    "cnn": ("tensor(float)", 64, "probabilities"),
    "text_classifier": ("tensor(int64)", 16, "probabilities"),
    "lstm": ("tensor(float)", 12, "variable"),
    "matrix_factorization": ("tensor(int64)", 2, "variable"),
}


@pytest.mark.parametrize("architecture", list(ARCH_CASES))
def test_onnx_and_torch_exports_of_each_architecture_match_the_network(architecture, request):
    import onnx
    import onnxruntime as ort

    changes = {"regularization": {"batch_norm": True, "dropout": 0.2}} if architecture == "cnn" else {}
    spec, data = case(architecture, request, epochs=2, **changes)
    run, _ = train(spec, data)
    onnx_bytes = run.export("onnx")
    kind, columns, output = ONNX_INPUTS[architecture]
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == [output]
    (feed,) = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).get_inputs()
    assert feed.type == kind and feed.shape[1] == columns and isinstance(feed.shape[0], str)

    inputs = run.model_inputs(data.X_val)
    got = _onnx_run(onnx_bytes, inputs)
    reference = run._predictions(data.X_val)
    if output == "probabilities":
        assert got.shape == (len(data.X_val), len(data.classes))
        np.testing.assert_allclose(got, reference, atol=1e-5)
    else:
        assert got.shape == (len(data.X_val), 1)
        np.testing.assert_allclose(got[:, 0], reference, rtol=1e-5, atol=1e-5)
    assert _onnx_run(onnx_bytes, inputs[:1]).shape[0] == 1  # the batch axis is dynamic

    saved = torch.load(io.BytesIO(run.export("torch")), weights_only=True)
    module = build_module(saved["config"])
    module.load_state_dict(saved["state_dict"])
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(torch.as_tensor(inputs)), run.module.eval()(torch.as_tensor(inputs)),
                                   rtol=0, atol=0)
    assert saved["config"]["architecture"] == architecture


def test_torch_export_configs_carry_what_rebuilding_needs(request):
    wanted = {
        "cnn": {"n_features": 64, "input_shape": [1, 8, 8], "filters": [8], "kernel_size": 3, "hidden_units": [64]},
        "text_classifier": {"max_length": 16, "embedding_dim": 16, "hidden_units": [32]},
        "lstm": {"window": 12, "hidden_size": 32, "num_layers": 1},
        "matrix_factorization": {"embedding_dim": 16},
    }
    for architecture, expected in wanted.items():
        spec, data = case(architecture, request, epochs=1)
        run, _ = train(spec, data)
        config = torch.load(io.BytesIO(run.export("torch")), weights_only=True)["config"]
        assert {k: config[k] for k in expected} == expected
        if architecture == "text_classifier":
            assert config["n_tokens"] == len(config["vocabulary"]) + 2
        if architecture == "matrix_factorization":
            assert config["n_users"] == len(config["user_index"]) == len(set(data.X_train[:, 0]))
            assert config["n_items"] == len(config["item_index"])


# Every architecture, and the mlp both ways it outputs (one binary logit, a regression value).
PROGRAM_CASES = {
    "mlp": ("cancer", lambda: make_spec(epochs=1, loss_function="binary_cross_entropy",
                                        regularization={"batch_norm": True, "dropout": 0.2})),
    "mlp-softmax": ("iris", lambda: make_spec(epochs=1)),
    "mlp-regression": ("diabetes", lambda: make_spec("regression", epochs=1)),
    **{arch: (fixture, lambda arch=arch: arch_spec(arch, epochs=1, **copy.deepcopy(ARCH_CASES[arch][1])))
       for arch, (fixture, _) in ARCH_CASES.items()},
}


def _reload_program(export: bytes):
    """The "torch" export's program as a user reloads it: torch alone, weights_only."""
    saved = torch.load(io.BytesIO(export), weights_only=True)
    assert set(saved) == {"state_dict", "config", "program"}
    assert isinstance(saved["program"], bytes)
    return torch.export.load(io.BytesIO(saved["program"])).module()


@pytest.mark.parametrize("name", list(PROGRAM_CASES))
def test_the_torch_exports_program_predicts_as_the_run(name, request):
    fixture, make = PROGRAM_CASES[name]
    data = request.getfixturevalue(fixture)
    run, _ = train(make(), data)
    module = _reload_program(run.export("torch"))
    inputs = torch.as_tensor(run.model_inputs(data.X_val))
    with torch.no_grad():
        got = module(inputs).double().numpy()
        one = module(inputs[:1])  # the batch axis is dynamic
    prediction = run.predict(data.X_val)
    if data.task == "classification":
        assert got.shape == prediction.probabilities.shape == (len(data.X_val), len(data.classes))
        np.testing.assert_allclose(got, prediction.probabilities, rtol=0, atol=1e-5)
        assert one.shape == (1, len(data.classes))
    else:
        assert got.shape == (len(data.X_val), 1)
        np.testing.assert_allclose(got[:, 0], prediction.values, rtol=1e-5, atol=1e-5)
        assert one.shape == (1, 1)


def test_a_failed_program_check_fails_the_torch_export(cancer, monkeypatch):
    run, _ = train(make_spec(epochs=1), cancer)
    honest = run._predictions
    monkeypatch.setattr(run, "_predictions", lambda X: np.clip(honest(X) + [0.01, -0.01], 0, 1))
    with pytest.raises(RuntimeError, match=r"^torch export check failed: max difference 0\.01 > tolerance 0\.0001$"):
        run.export("torch")


def test_the_torch_export_reloads_with_torch_alone(reviews, request, tmp_path):
    # Token ids in, probabilities out; the reloading interpreter imports nothing of this project.
    spec, data = case("text_classifier", request, epochs=1)
    run, _ = train(spec, data)
    path = tmp_path / "model.pt"
    path.write_bytes(run.export("torch"))
    inputs = run.model_inputs(data.X_val)
    np.save(tmp_path / "ids.npy", inputs)
    script = textwrap.dedent("""
        import io, json, sys
        import numpy as np, torch
        obj = torch.load("model.pt", weights_only=True)
        module = torch.export.load(io.BytesIO(obj["program"])).module()
        with torch.no_grad():
            np.save("out.npy", module(torch.as_tensor(np.load("ids.npy"))).numpy())
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "server", "forge"))))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-4000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), run.predict(data.X_val).probabilities,
                               rtol=0, atol=1e-5)


def test_the_onnx_check_covers_integer_inputs(ratings, monkeypatch, request):
    spec, _ = case("matrix_factorization", request, epochs=1)
    run, _ = train(spec, ratings)
    honest = run._predictions
    monkeypatch.setattr(run, "_predictions", lambda X: honest(X) + 0.5)
    with pytest.raises(RuntimeError, match=r"^ONNX export check failed: max difference 0\.5 > tolerance"):
        run.export("onnx")


@pytest.mark.parametrize("architecture, changes, field, fragment", [
    ("cnn", {}, "model_config.input_shape", "[1, 8, 8]"),
    ("cnn", {"input_shape": [1, 8, 8], "hyperparameters": {"kernel_size": 4}},
     "model_config.hyperparameters.kernel_size", "odd"),
    ("text_classifier", {}, "model_config.architecture", "text_column"),
    ("text_classifier", {"data": {"text_column": "t"}, "hyperparameters": {"hidden_size": 4}},
     "model_config.hyperparameters.hidden_size", "unknown hyperparameter"),
    ("lstm", {}, "model_type", "FORECASTING"),
    ("lstm", {"model_type": "forecasting", "loss_function": "cross_entropy"}, "training_config.loss_function",
     "forecasting"),
    ("matrix_factorization", {"model_type": "regression"}, "model_type", "RECOMMENDATION"),
    ("matrix_factorization", {"model_type": "recommendation", "hyperparameters": {"class_weight": "balanced"}},
     "model_config.hyperparameters.class_weight", "unknown hyperparameter"),
])
def test_validation_of_the_other_architectures_names_the_field(architecture, changes, field, fragment):
    spec = arch_spec(architecture, **{"model_type": "classification", **changes})
    violation = _violation(lambda: adapter.validate(spec))
    assert violation.field == field
    assert fragment in violation.description


def test_natural_settings_of_the_other_architectures_are_accepted():
    adapter.validate(arch_spec("cnn", "classification", input_shape=[8, 8], regularization={"batch_norm": True},
                               hyperparameters={"filters": [8, 16], "kernel_size": 5, "hidden_units": [32],
                                                "class_weight": "balanced"}))
    adapter.validate(arch_spec("text_classifier", "classification", data={"text_column": "review"},
                               loss_function="binary_cross_entropy",
                               hyperparameters={"vocab_size": 1000, "max_length": 32, "embedding_dim": 8}))
    adapter.validate(arch_spec("lstm", "forecasting", loss_function="mae",
                               hyperparameters={"hidden_size": 16, "num_layers": 2}))
    adapter.validate(arch_spec("matrix_factorization", "recommendation", regularization={"l2": 0.01},
                               hyperparameters={"embedding_dim": 8},
                               lr_scheduler={"type": "reduce_on_plateau", "metric": "rmse"}))


# --- validation ---


def _violation(call):
    with pytest.raises(InvalidArgument) as err:
        call()
    (violation,) = err.value.violations
    assert err.value.message.startswith(violation.field + ": ")
    return violation


@pytest.mark.parametrize("changes, field, fragment", [
    ({"architecture": "resnet"}, "model_config.architecture",
     "use one of mlp, cnn, text_classifier, lstm, matrix_factorization"),
    ({"model_type": "forecasting"}, "model_type", "CLASSIFICATION or REGRESSION"),
    ({"optimizer": "adagrad"}, "training_config.optimizer", "adam, adamw, sgd, rmsprop"),
    ({"optimizer_config": {"momentum": 0.9}}, "training_config.optimizer_config.momentum", "sgd and rmsprop"),
    ({"optimizer": "sgd", "optimizer_config": {"nesterov": True}}, "training_config.optimizer_config.nesterov",
     "momentum > 0"),
    ({"optimizer_config": {"beta1": 1.5}}, "training_config.optimizer_config.beta1", "[0, 1)"),
    ({"optimizer": "rmsprop", "optimizer_config": {"epsilon": 0}}, "training_config.optimizer_config.epsilon",
     "> 0"),
    ({"optimizer_config": {"lr_decay": 0.1}}, "training_config.optimizer_config.lr_decay", "unknown option"),
    ({"learning_rate": -0.1}, "training_config.learning_rate", "positive"),
    ({"loss_function": "mse"}, "training_config.loss_function", "does not fit classification"),
    ({"regularization": {"dropout": 1.0}}, "training_config.regularization.dropout", "[0, 1)"),
    ({"regularization": {"l1": float("nan")}}, "training_config.regularization.l1", "finite"),
    ({"regularization": {"l2": 0.1, "weight_decay": 0.1}}, "training_config.regularization.l2", "only one"),
    ({"regularization": {"batch_norm": True}, "batch_size": 1}, "training_config.batch_size", "at least 2"),
    ({"batch_size": 0}, "training_config.batch_size", "at least 1"),
    ({"epochs": 0}, "training_config.epochs", "between 1"),
    ({"hyperparameters": {"hidden_units": [16, 0]}}, "model_config.hyperparameters.hidden_units",
     "positive integers"),
    ({"hyperparameters": {"activation": "swish"}}, "model_config.hyperparameters.activation", "relu"),
    ({"hyperparameters": {"kernel_size": 3}}, "model_config.hyperparameters.kernel_size", "unknown hyperparameter"),
    ({"lr_scheduler": {"type": "reduce_on_plateau", "metric": "auc"}}, "training_config.lr_scheduler.metric",
     "validation_loss"),
    ({"lr_scheduler": {"type": "warmup"}}, "training_config.lr_scheduler.type", "unknown schedule"),
])
def test_validation_names_the_field(changes, field, fragment):
    spec = make_spec(**{k: v for k, v in changes.items() if k not in ("architecture", "hyperparameters")},
                     hyperparameters=changes.get("hyperparameters"))
    if "architecture" in changes:
        spec.architecture = changes["architecture"]
    violation = _violation(lambda: adapter.validate(spec))
    assert violation.field == field
    assert fragment in violation.description


def test_natural_settings_are_accepted():
    adapter.validate(make_spec(optimizer="sgd", optimizer_config={"momentum": 0.9, "nesterov": True},
                               learning_rate=0.01, gradient_accumulation_steps=4, mixed_precision=True,
                               regularization={"dropout": 0.5, "batch_norm": True, "l1": 1e-4,
                                               "gradient_clip_norm": 1.0, "weight_decay": 1e-4},
                               lr_scheduler={"type": "cosine", "warmup_epochs": 1}))
    adapter.validate(make_spec("regression", loss_function="huber", optimizer="rmsprop",
                               optimizer_config={"rho": 0.9, "epsilon": 1e-6}, regularization={"l2": 0.01},
                               lr_scheduler={"type": "reduce_on_plateau", "metric": "r2"}))
    assert adapter.planned_epochs(make_spec(epochs=12)) == 12


def test_data_problems_are_named(cancer, iris):
    violation = _violation(lambda: adapter.create_run(make_spec(loss_function="binary_cross_entropy"), iris))
    assert violation.field == "training_config.loss_function" and "3" in violation.description
    one_class = copy.copy(cancer)
    keep = cancer.y_train == 1
    one_class.X_train, one_class.y_train = cancer.X_train[keep], cancer.y_train[keep]
    violation = _violation(lambda: adapter.create_run(make_spec(), one_class))
    assert violation.field == "data_config.label_column"


def test_validating_in_the_server_process_loads_no_framework():
    script = textwrap.dedent("""
        import sys
        from engine.frameworks.registry import get_adapter
        from engine.jobs.spec import TrainingSpec
        adapter = get_adapter("pytorch")
        from engine.jobs.spec import DataSpec
        specs = [TrainingSpec(framework="pytorch", architecture="mlp", model_type=task, epochs=4,
                              hyperparameters={"hidden_units": [8]}) for task in ("classification", "regression")]
        specs += [
            TrainingSpec(framework="pytorch", architecture="cnn", model_type="classification", epochs=4,
                         input_shape=[1, 8, 8]),
            TrainingSpec(framework="pytorch", architecture="text_classifier", model_type="classification", epochs=4,
                         data=DataSpec(text_column="review")),
            TrainingSpec(framework="pytorch", architecture="lstm", model_type="forecasting", epochs=4),
            TrainingSpec(framework="pytorch", architecture="matrix_factorization", model_type="recommendation",
                         epochs=4),
        ]
        for spec in specs:
            adapter.validate(spec)
            assert adapter.planned_epochs(spec) == 4
        loaded = sorted(m for m in ("torch", "onnx", "onnxruntime", "sklearn") if m in sys.modules)
        print(",".join(loaded) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


# --- GPU (runs only where CUDA is available) ---


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_mixed_precision_trains_resumes_and_exports(cancer):
    spec = make_spec(epochs=4, mixed_precision=True, resources={"gpu": 1}, regularization={"dropout": 0.2})
    run, results = train(spec, cancer, until=2)
    assert run.device.startswith("cuda")
    assert "mixed precision: float16 autocast with gradient scaling" in results[0].logs
    resumed = adapter.load_run(spec, cancer, run.state_bytes())
    assert resumed._scaler.get_scale() == run._scaler.get_scale()
    later = [resumed.train_epoch(e) for e in (3, 4)]
    assert later[-1].metrics["accuracy"] > 0.85 and np.isfinite(later[-1].metrics["gradient_norm"])
    check_parity(resumed.export("onnx"), resumed._predictions(cancer.X_val), cancer.X_val, atol=1e-4)
    on_cpu = adapter.load_run(make_spec(epochs=4, regularization={"dropout": 0.2}), cancer, resumed.state_bytes())
    assert on_cpu.device == "cpu" and on_cpu.epoch == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("architecture", list(ARCH_CASES))
def test_cuda_trains_resumes_and_exports_each_architecture(architecture, request):
    spec, data = case(architecture, request, epochs=4, mixed_precision=True, resources={"gpu": 1})
    run, results = train(spec, data, until=2)
    assert run.device.startswith("cuda")
    resumed = adapter.load_run(spec, data, run.state_bytes())
    later = [resumed.train_epoch(e) for e in (3, 4)]
    assert all(np.isfinite(r.metrics["validation_loss"]) for r in results + later)
    onnx_bytes = resumed.export("onnx")  # checks parity with the network itself
    got = _onnx_run(onnx_bytes, resumed.model_inputs(data.X_val))
    reference = resumed._predictions(data.X_val)
    np.testing.assert_allclose(got[:, 0] if reference.ndim == 1 else got, reference, rtol=1e-4, atol=1e-4)
    resumed.export("torch")  # its CPU program is checked against the CUDA network's predictions
    cpu_spec, _ = case(architecture, request, epochs=4)
    assert adapter.load_run(cpu_spec, data, resumed.state_bytes()).device == "cpu"
