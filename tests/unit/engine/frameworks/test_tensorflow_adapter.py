import copy
import io
import math
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.errors import FailedPrecondition, InvalidArgument, Unimplemented
from engine.export.parity import check_parity, onnx_predict
from engine.frameworks import neural
from engine.frameworks import tensorflow_adapter as tfa
from engine.frameworks.base import TrainingData
from engine.frameworks.tensorflow_adapter import TensorFlowAdapter
from engine.jobs.spec import TrainingSpec

REPO = Path(__file__).resolve().parents[4]
adapter = TensorFlowAdapter()
CLASSIFICATION_METRICS = {"training_loss", "validation_loss", "accuracy", "precision", "recall", "f1_score",
                          "learning_rate", "gradient_norm"}
REGRESSION_METRICS = {"training_loss", "validation_loss", "rmse", "mae", "r2", "learning_rate", "gradient_norm"}


def _split(loader, task, rows=None):
    from sklearn.model_selection import train_test_split

    X, y = loader(return_X_y=True)
    if rows is not None:
        X, y = X[:rows], y[:rows]
    stratify = y if task == "classification" else None
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=stratify)
    classes = sorted(set(y.tolist())) if task == "classification" else None
    names = [f"f{i}" for i in range(X.shape[1])]
    return TrainingData(task, names, "target", X_train, y_train, X_val, y_val, classes)


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer

    return _split(load_breast_cancer, "classification")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return _split(load_iris, "classification")


@pytest.fixture(scope="module")
def diabetes():
    from sklearn.datasets import load_diabetes

    return _split(load_diabetes, "regression", rows=300)


def make_spec(model_type="classification", epochs=3, hyperparameters=None, **config):
    raw = {"framework": "tensorflow", "architecture": "mlp", "model_type": model_type, "epochs": epochs,
           "batch_size": 64, "hyperparameters": {"hidden_units": [16], **(hyperparameters or {})}, "seed": 7,
           **config}
    return TrainingSpec.from_dict(raw)


def train(spec, data, until=None):
    run = adapter.create_run(spec, data)
    results = [run.train_epoch(epoch) for epoch in range(1, (until or run.total_epochs) + 1)]
    return run, results


CANCER_LR, CANCER_GAMMA = 0.01, 0.8


@pytest.fixture(scope="module")
def cancer_run(cancer):
    """One classifier trained once for the module: 12 epochs, exponential learning-rate decay."""
    spec = make_spec(epochs=12, learning_rate=CANCER_LR, lr_scheduler={"type": "exponential", "gamma": CANCER_GAMMA})
    return train(spec, cancer)


@pytest.fixture(scope="module")
def diabetes_run(diabetes):
    return train(make_spec("regression", epochs=6, learning_rate=0.01), diabetes)


# --- training ---


def test_learns_breast_cancer(cancer_run):
    run, results = cancer_run
    assert run.total_epochs == 12 and len(results) == 12
    final = results[-1].metrics
    assert set(final) == CLASSIFICATION_METRICS
    assert final["accuracy"] > 0.9
    assert final["validation_loss"] < 0.5 * results[0].metrics["validation_loss"]
    assert all(math.isfinite(r.extra["train_objective"]) for r in results)


def test_learning_rate_follows_the_exponential_schedule(cancer_run):
    run, results = cancer_run
    rates = [r.metrics["learning_rate"] for r in results]
    assert rates == pytest.approx([CANCER_LR * CANCER_GAMMA ** (e - 1) for e in range(1, 13)], rel=1e-12)
    # ... and it is the rate the optimizer stepped with (a float32 variable).
    assert float(run._optimizer.learning_rate) == pytest.approx(rates[-1], rel=1e-6)


def test_gradient_norm_is_that_of_the_epochs_first_batch(cancer_run, cancer):
    run, results = cancer_run
    norms = [r.metrics["gradient_norm"] for r in results]
    assert all(math.isfinite(n) and n > 0 for n in norms)
    order = np.random.default_rng((7, 12)).permutation(len(cancer.y_train))
    X, y = run._X_train[order], run._targets()[order]
    assert run._gradient_norm(X[:64], y[:64]) == pytest.approx(norms[-1], rel=1e-6)
    assert run._gradient_norm(X[64:128], y[64:128]) != pytest.approx(norms[-1], rel=1e-3)


def test_evaluate_matches_the_epoch_metrics(cancer_run, cancer):
    run, results = cancer_run
    evaluated = run.evaluate(cancer.X_val, cancer.y_val)
    expected = {k: v for k, v in results[-1].metrics.items()
                if k not in ("training_loss", "learning_rate", "gradient_norm")}
    assert evaluated == pytest.approx(expected, rel=1e-12)
    assert run.class_labels == [0, 1]


def test_regression_metrics_and_target_units(diabetes_run, diabetes):
    run, results = diabetes_run
    m = results[-1].metrics
    assert set(m) == REGRESSION_METRICS
    assert m["rmse"] == pytest.approx(m["validation_loss"] ** 0.5)
    assert m["r2"] > 0.2 and results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"]
    # Predictions are in target units although the network learns standardized targets.
    assert abs(run.predict(diabetes.X_val).mean() - diabetes.y_train.mean()) < 0.3 * diabetes.y_train.std()
    assert run.class_labels is None
    assert set(run.evaluate(diabetes.X_val, diabetes.y_val)) == {"validation_loss", "rmse", "mae", "r2"}


def test_binary_cross_entropy_uses_one_sigmoid_unit(cancer):
    run, results = train(make_spec(epochs=2, loss_function="binary_cross_entropy", learning_rate=0.01), cancer)
    output = run._model.layers[-1]
    assert output.units == 1 and output.activation.__name__ == "sigmoid"
    proba = run.predict_proba(cancer.X_val)
    assert proba.shape == (len(cancer.X_val), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert results[-1].metrics["accuracy"] > 0.8
    onnx_bytes = run.export("onnx")
    assert onnx_predict(onnx_bytes, cancer.X_val)["probabilities"].shape == proba.shape
    check_parity(onnx_bytes, proba, cancer.X_val, atol=tfa.ONNX_TOLERANCE)


def test_network_layers_follow_the_spec(iris):
    spec = make_spec(hyperparameters={"hidden_units": [8.0, 4.0], "activation": "tanh"},
                     regularization={"dropout": 0.25, "batch_norm": True, "l1": 0.01, "l2": 0.02})
    run = adapter.create_run(spec, iris)
    kinds = [type(layer).__name__ for layer in run._model.layers]
    assert kinds == ["Normalization", "Dense", "BatchNormalization", "Activation", "Dropout",
                     "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    dense = [layer for layer in run._model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [8, 4, 3]
    assert all(d.kernel_regularizer.l1 == pytest.approx(0.01) and d.kernel_regularizer.l2 == pytest.approx(0.02)
               for d in dense)
    assert run._model.layers[3].activation.__name__ == "tanh"
    assert run._model.layers[4].rate == 0.25
    # Normalization is adapted to the training features.
    np.testing.assert_allclose(run._norm.adapt_mean.numpy(), iris.X_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(run._norm.adapt_variance.numpy(), iris.X_train.var(axis=0), rtol=1e-4)


def test_a_constant_feature_is_not_blown_up(iris):
    data = copy.copy(iris)
    data.X_train = np.column_stack([iris.X_train, np.full(len(iris.X_train), 5.0)])
    data.X_val = np.column_stack([iris.X_val, np.full(len(iris.X_val), 6.0)])
    data.feature_names = iris.feature_names + ["constant"]
    run, results = train(make_spec(epochs=1), data)
    assert run._norm.adapt_variance.numpy()[-1] == 1.0
    # A value one unit off the training constant moves its input by 1, not by 1e7.
    assert np.all(np.isfinite(run.predict_proba(data.X_val))) and results[0].metrics["validation_loss"] < 5


@pytest.mark.parametrize("optimizer, config, regularization, expected", [
    ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}, {"gradient_clip_norm": 2.0},
     {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "global_clipnorm": 2.0, "weight_decay": None}),
    ("adamw", {}, {"weight_decay": 0.05}, {"weight_decay": 0.05}),
    ("sgd", {"momentum": 0.9, "nesterov": True}, {"weight_decay": 0.001},
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.001}),
    ("rmsprop", {"rho": 0.8, "momentum": 0.5}, {}, {"rho": 0.8, "momentum": 0.5}),
])
def test_optimizer_settings_reach_keras(optimizer, config, regularization, expected, iris):
    spec = make_spec(optimizer=optimizer, optimizer_config=config, regularization=regularization,
                     gradient_accumulation_steps=3, learning_rate=0.02)
    run = adapter.create_run(spec, iris)
    opt = run._optimizer
    assert type(opt).__name__ == {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}[optimizer]
    assert opt.gradient_accumulation_steps == 3
    assert float(opt.learning_rate) == pytest.approx(0.02)
    for name, value in expected.items():
        assert getattr(opt, name) == (pytest.approx(value) if isinstance(value, float) else value), name


def test_adamw_without_weight_decay_says_it_is_adam(iris):
    _, results = train(make_spec(epochs=1, optimizer="adamw"), iris)
    assert any("adamw without weight decay is adam" in line for line in results[0].logs)


def test_class_weights(iris):
    run = adapter.create_run(make_spec(hyperparameters={"class_weight": "balanced"}), iris)
    expected = neural.class_weights(run._spec, iris.y_train, iris.classes)
    assert run._class_weight == {i: pytest.approx(w) for i, w in enumerate(expected)}
    run = adapter.create_run(make_spec(hyperparameters={"class_weight": {"2": 4.0}}), iris)
    assert run._class_weight == {0: 1.0, 1: 1.0, 2: 4.0}
    # Weighting a class up raises the gradient of a batch where it is present.
    plain = adapter.create_run(make_spec(), iris)
    X, y = plain._X_train[:64], plain._targets()[:64]
    assert run._gradient_norm(X, y) > plain._gradient_norm(X, y)
    with pytest.raises(InvalidArgument) as err:
        adapter.create_run(make_spec(hyperparameters={"class_weight": {"7": 1.0}}), iris)
    assert err.value.violations[0].field == "model_config.hyperparameters.class_weight"


def test_mixed_precision_is_ignored_on_the_cpu(iris):
    run, results = train(make_spec(epochs=1, mixed_precision=True), iris)
    assert "mixed_precision is ignored on the CPU: training in float32" in results[0].logs
    assert {layer.dtype_policy.name for layer in run._model.layers} == {"float32"}


def test_mixed_precision_path(iris, monkeypatch):
    # This machine has no GPU; placing the run as if it had one (on the CPU, which computes
    # float16 too) exercises what mixed precision changes: float16 hidden layers, loss
    # scaling, their checkpoint and their export.
    monkeypatch.setattr(tfa, "_placement", lambda tf, spec: ("/CPU:0", True, []))
    spec = make_spec(epochs=3, mixed_precision=True, learning_rate=0.01, regularization={"batch_norm": True})
    whole, whole_results = train(spec, iris)
    assert type(whole._optimizer).__name__ == "LossScaleOptimizer"
    assert [layer.dtype_policy.name for layer in whole._model.layers][1:] == ["mixed_float16"] * 3 + ["float32"]
    assert whole_results[-1].metrics["validation_loss"] < whole_results[0].metrics["validation_loss"]
    first, _ = train(spec, iris, until=2)
    resumed = adapter.load_run(spec, iris, first.state_bytes())
    assert resumed.train_epoch(3).metrics == whole_results[-1].metrics
    onnx_bytes = whole.export("onnx")
    check_parity(onnx_bytes, whole.predict_proba(iris.X_val), iris.X_val, atol=tfa.ONNX_TOLERANCE_MIXED)


def test_divergence_fails_with_advice(diabetes):
    run = adapter.create_run(make_spec("regression", optimizer="sgd", learning_rate=1e6), diabetes)
    with pytest.raises(RuntimeError, match="diverged in epoch 1.*learning_rate"):
        run.train_epoch(1)


def test_without_validation_data_metrics_use_the_training_data(iris):
    data = copy.copy(iris)
    data.X_val = data.y_val = None
    run, results = train(make_spec(epochs=2), data)
    note = "no validation data: validation metrics are computed on the training data"
    assert note in results[0].logs and note not in results[1].logs
    assert results[1].metrics["validation_loss"] == results[1].metrics["training_loss"]
    run.export("onnx")  # the ONNX check runs on training rows instead


def test_a_class_missing_from_training_keeps_its_column(iris):
    data = copy.copy(iris)
    keep = data.y_train != 2
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    run, results = train(make_spec(epochs=1), data)
    assert any("[2]" in line for line in results[0].logs)
    assert run.class_labels == [0, 1, 2]
    assert run.predict_proba(data.X_val).shape == (len(data.X_val), 3)


def test_untrained_runs_cannot_export_or_evaluate(iris):
    run = adapter.create_run(make_spec(), iris)
    with pytest.raises(FailedPrecondition):
        run.export("onnx")
    with pytest.raises(FailedPrecondition):
        run.evaluate(iris.X_val, iris.y_val)


def test_epochs_must_come_in_order(iris):
    run = adapter.create_run(make_spec(epochs=1), iris)
    with pytest.raises(ValueError, match="next is 1"):
        run.train_epoch(2)
    run.train_epoch(1)
    with pytest.raises(ValueError, match="complete"):
        run.train_epoch(2)


def test_versions():
    v = adapter.versions()
    assert set(v) == {"tensorflow", "keras", "tf2onnx", "onnx", "numpy", "python"}
    assert all(isinstance(x, str) and x[0].isdigit() for x in v.values())
    assert v["keras"].startswith("3.")


# --- export ---


def test_onnx_matches_the_model(cancer_run, cancer):
    run, _ = cancer_run
    assert run.export_formats == ["onnx", "savedmodel"]
    onnx_bytes = run.export("onnx")
    out = onnx_predict(onnx_bytes, cancer.X_val)
    assert set(out) == {"label", "probabilities"}
    assert check_parity(onnx_bytes, run.predict_proba(cancer.X_val), cancer.X_val, atol=tfa.ONNX_TOLERANCE) < 1e-4
    np.testing.assert_array_equal(out["label"], run.predict(cancer.X_val))


def test_onnx_regression_and_string_labels(diabetes_run, diabetes, iris):
    run, _ = diabetes_run
    onnx_bytes = run.export("onnx")
    assert set(onnx_predict(onnx_bytes, diabetes.X_val)) == {"variable"}
    check_parity(onnx_bytes, run.predict(diabetes.X_val), diabetes.X_val, atol=0.0, rtol=1e-5)

    names = np.array(["setosa", "versicolor", "virginica"])
    data = copy.copy(iris)
    data.y_train, data.y_val, data.classes = names[iris.y_train], names[iris.y_val], list(names)
    run, _ = train(make_spec(epochs=2, learning_rate=0.01), data)
    out = onnx_predict(run.export("onnx"), data.X_val)
    np.testing.assert_array_equal(out["label"], run.predict(data.X_val))
    assert out["probabilities"].shape == (len(data.X_val), 3)


def test_a_failed_onnx_check_fails_the_export(cancer_run, monkeypatch):
    run, _ = cancer_run
    monkeypatch.setattr(tfa, "ONNX_TOLERANCE", 1e-12)
    with pytest.raises(RuntimeError, match=r"ONNX export check failed: max difference \S+ > tolerance 1e-12"):
        run.export("onnx")


def _load_savedmodel(tar_bytes, tmp_path):
    import tensorflow as tf

    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        tar.extractall(tmp_path, filter="data")
    assert (tmp_path / "saved_model.pb").is_file()
    return tf.saved_model.load(str(tmp_path))


def test_savedmodel_round_trip(cancer_run, cancer, tmp_path):
    run, _ = cancer_run
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    out = loaded.serve(cancer.X_val.astype(np.float32))
    np.testing.assert_allclose(out["probabilities"].numpy(), run.predict_proba(cancer.X_val), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out["label"].numpy(), run.predict(cancer.X_val))


def test_savedmodel_regression(diabetes_run, diabetes, tmp_path):
    run, _ = diabetes_run
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    out = loaded.serve(diabetes.X_val.astype(np.float32))["variable"].numpy()
    np.testing.assert_allclose(out[:, 0], run.predict(diabetes.X_val), rtol=1e-6)


def test_export_rejects_other_formats(cancer_run):
    run, _ = cancer_run
    for fmt in ("pickle", "torch", "bogus"):
        with pytest.raises(InvalidArgument) as err:
            run.export(fmt)
        assert err.value.violations[0].field == "format"


# --- checkpoints ---


@pytest.mark.parametrize("model_type, config", [
    ("classification", {"learning_rate": 0.01}),
    ("classification", {"learning_rate": 0.05, "optimizer": "sgd",
                        "optimizer_config": {"momentum": 0.9, "nesterov": True},
                        "regularization": {"batch_norm": True, "l2": 0.01, "gradient_clip_norm": 1.0},
                        "lr_scheduler": {"type": "reduce_on_plateau", "patience": 1, "gamma": 0.5}}),
    ("classification", {"learning_rate": 0.01, "regularization": {"dropout": 0.3}}),
    ("regression", {"learning_rate": 0.01, "optimizer": "rmsprop", "loss_function": "huber", "batch_size": 32,
                    "gradient_accumulation_steps": 2}),
], ids=["adam", "sgd-batchnorm-plateau", "dropout", "rmsprop-accumulation"])
def test_resumed_run_equals_an_uninterrupted_one(model_type, config, iris, diabetes):
    data = iris if model_type == "classification" else diabetes
    spec = make_spec(model_type, epochs=4, **config)
    whole, whole_results = train(spec, data)

    first, _ = train(spec, data, until=2)
    resumed = TensorFlowAdapter().load_run(spec, copy.deepcopy(data), first.state_bytes())
    assert resumed.epoch == 2
    resumed_results = [resumed.train_epoch(epoch) for epoch in (3, 4)]

    # Same batches, same dropout draws, same optimizer state: measured identical to the last bit.
    assert resumed_results[-1].metrics == pytest.approx(whole_results[-1].metrics, rel=0, abs=1e-12)
    assert resumed_results[-1].extra == whole_results[-1].extra
    np.testing.assert_allclose(resumed._raw(data.X_val), whole._raw(data.X_val), rtol=0, atol=1e-12)


def test_restore_rejects_another_networks_checkpoint(iris):
    run, _ = train(make_spec(epochs=1), iris)
    state = run.state_bytes()
    with pytest.raises(FailedPrecondition, match="hidden_units"):
        adapter.load_run(make_spec(hyperparameters={"hidden_units": [8]}), iris, state)
    with pytest.raises(FailedPrecondition, match="optimizer"):
        adapter.load_run(make_spec(optimizer="sgd"), iris, state)
    with pytest.raises(FailedPrecondition, match="not a tensorflow adapter checkpoint"):
        adapter.load_run(make_spec(), iris, b"not a checkpoint")


# --- validation ---


def _violation(call):
    with pytest.raises(InvalidArgument) as err:
        call()
    (violation,) = err.value.violations
    assert err.value.message.startswith(violation.field + ": ")
    return violation


@pytest.mark.parametrize("changes, field, fragment", [
    ({"architecture": "resnet"}, "model_config.architecture", "tensorflow supports 'mlp'"),
    ({"architecture": ""}, "model_config.architecture", "tensorflow supports 'mlp'"),
    ({"model_type": "forecasting"}, "model_type", "CLASSIFICATION or REGRESSION"),
    ({"epochs": 0}, "training_config.epochs", "between 1 and"),
    ({"batch_size": 0}, "training_config.batch_size", "at least 1"),
    ({"seed": -1}, "training_config.seed", "between 0"),
    ({"learning_rate": -0.1}, "training_config.learning_rate", "positive"),
    ({"learning_rate": float("nan")}, "training_config.learning_rate", "positive"),
    ({"optimizer": "lbfgs"}, "training_config.optimizer", "adam, adamw, sgd, rmsprop"),
    ({"optimizer_config": {"momentum": 0.9}}, "training_config.optimizer_config.momentum", "sgd and rmsprop"),
    ({"optimizer": "sgd", "optimizer_config": {"nesterov": True}}, "training_config.optimizer_config.nesterov",
     "momentum > 0"),
    ({"optimizer_config": {"beta1": 1.5}}, "training_config.optimizer_config.beta1", "[0, 1)"),
    ({"optimizer_config": {"epsilon": 0}}, "training_config.optimizer_config.epsilon", "> 0"),
    ({"optimizer_config": {"decay": 0.1}}, "training_config.optimizer_config.decay", "unknown option"),
    ({"loss_function": "mse"}, "training_config.loss_function", "cross_entropy, binary_cross_entropy"),
    ({"regularization": {"dropout": 1.0}}, "training_config.regularization.dropout", "[0, 1)"),
    ({"regularization": {"l2": -1.0}}, "training_config.regularization.l2", ">= 0"),
    ({"regularization": {"l1": float("inf")}}, "training_config.regularization.l1", "finite"),
    ({"regularization": {"batch_norm": True}, "batch_size": 1}, "training_config.batch_size", "at least 2 rows"),
    ({"lr_scheduler": {"type": "triangle"}}, "training_config.lr_scheduler.type", "unknown schedule"),
    ({"lr_scheduler": {"type": "reduce_on_plateau", "metric": "rmse"}}, "training_config.lr_scheduler.metric",
     "no metric 'rmse'"),
    ({"hyperparameters": {"hidden_units": [0]}}, "model_config.hyperparameters.hidden_units", "positive integers"),
    ({"hyperparameters": {"activation": "swish"}}, "model_config.hyperparameters.activation", "relu"),
    ({"hyperparameters": {"layers": 3}}, "model_config.hyperparameters.layers", "unknown hyperparameter"),
])
def test_validation_names_the_field(changes, field, fragment):
    raw = {"framework": "tensorflow", "architecture": "mlp", "model_type": "classification", **changes}
    violation = _violation(lambda: adapter.validate(TrainingSpec.from_dict(raw)))
    assert violation.field == field
    assert fragment in violation.description


@pytest.mark.parametrize("architecture", ["cnn", "lstm", "text_classifier"])
def test_later_architectures_are_unimplemented(architecture):
    with pytest.raises(Unimplemented) as err:
        adapter.validate(TrainingSpec(framework="tensorflow", architecture=architecture, model_type="classification"))
    assert str(err.value) == f"tensorflow architecture {architecture!r} is not implemented yet; available: mlp"


def test_natural_settings_are_accepted():
    adapter.validate(make_spec(optimizer="sgd", optimizer_config={"momentum": 0.9, "nesterov": True},
                               loss_function="cross_entropy", learning_rate=0.1, mixed_precision=True,
                               regularization={"dropout": 0.5, "batch_norm": True, "l1": 0.1, "l2": 0.1,
                                               "weight_decay": 0.01, "gradient_clip_norm": 1.0},
                               lr_scheduler={"type": "cosine", "warmup_epochs": 1}, gradient_accumulation_steps=4,
                               early_stopping={"enabled": True}, resources={"gpu": 1}))
    adapter.validate(make_spec("regression", loss_function="huber", optimizer="rmsprop",
                               optimizer_config={"rho": 0.95, "epsilon": 1e-6, "momentum": 0.1}))
    assert adapter.planned_epochs(make_spec(epochs=17)) == 17


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
        from engine.errors import Unimplemented
        from engine.frameworks.registry import get_adapter
        from engine.jobs.spec import TrainingSpec
        adapter = get_adapter("tensorflow")
        for task in ("classification", "regression"):
            spec = TrainingSpec(framework="tensorflow", architecture="mlp", model_type=task, epochs=3,
                                hyperparameters={"hidden_units": [8]})
            adapter.validate(spec)
            assert adapter.planned_epochs(spec) == 3
        try:
            adapter.validate(TrainingSpec(framework="tensorflow", architecture="cnn", model_type="classification"))
        except Unimplemented:
            pass
        frameworks = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "sklearn", "scipy")
        print(",".join(sorted(m for m in frameworks if m in sys.modules)) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
