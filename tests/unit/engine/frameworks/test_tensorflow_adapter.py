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


# The cancer, iris and diabetes fixtures come from conftest.py.
DIABETES_ROWS = 300


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
    assert abs(run.predict(diabetes.X_val).values.mean() - diabetes.y_train.mean()) < 0.3 * diabetes.y_train.std()
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
    np.testing.assert_array_equal(out["label"], run.predict(cancer.X_val).values)


def test_onnx_regression_and_string_labels(diabetes_run, diabetes, iris):
    run, _ = diabetes_run
    onnx_bytes = run.export("onnx")
    assert set(onnx_predict(onnx_bytes, diabetes.X_val)) == {"variable"}
    check_parity(onnx_bytes, run.predict(diabetes.X_val).values, diabetes.X_val, atol=0.0, rtol=1e-5)

    names = np.array(["setosa", "versicolor", "virginica"])
    data = copy.copy(iris)
    data.y_train, data.y_val, data.classes = names[iris.y_train], names[iris.y_val], list(names)
    run, _ = train(make_spec(epochs=2, learning_rate=0.01), data)
    out = onnx_predict(run.export("onnx"), data.X_val)
    np.testing.assert_array_equal(out["label"], run.predict(data.X_val).values)
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
    np.testing.assert_array_equal(out["label"].numpy(), run.predict(cancer.X_val).values)


def test_savedmodel_regression(diabetes_run, diabetes, tmp_path):
    run, _ = diabetes_run
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    out = loaded.serve(diabetes.X_val.astype(np.float32))["variable"].numpy()
    np.testing.assert_allclose(out[:, 0], run.predict(diabetes.X_val).values, rtol=1e-6)


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
    ({"architecture": "resnet"}, "model_config.architecture", "use one of mlp, cnn, text_classifier, lstm"),
    ({"architecture": ""}, "model_config.architecture", "use one of mlp, cnn, text_classifier, lstm"),
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


@pytest.mark.parametrize("model_type", ["recommendation", "classification"])
def test_matrix_factorization_is_unimplemented(model_type):
    # The API names it and neural.validate_network knows it, but this adapter does not build it:
    # validate_network answers Unimplemented (before any other check), as intended.
    with pytest.raises(Unimplemented) as err:
        adapter.validate(TrainingSpec(framework="tensorflow", architecture="matrix_factorization",
                                      model_type=model_type))
    assert str(err.value) == ("tensorflow architecture 'matrix_factorization' is not implemented yet; "
                              "available: mlp, cnn, text_classifier, lstm")
    assert not hasattr(tfa, "LATER_ARCHITECTURES")


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
        adapter.validate(TrainingSpec(framework="tensorflow", architecture="cnn", model_type="classification",
                                      input_shape=[1, 8, 8], hyperparameters={"filters": [8], "kernel_size": 3}))
        adapter.validate(TrainingSpec.from_dict({
            "framework": "tensorflow", "architecture": "text_classifier", "model_type": "classification",
            "hyperparameters": {"vocab_size": 100, "max_length": 16}, "data": {"text_column": "text"}}))
        adapter.validate(TrainingSpec(framework="tensorflow", architecture="lstm", model_type="forecasting",
                                      hyperparameters={"hidden_size": 8, "num_layers": 2}))
        try:
            adapter.validate(TrainingSpec(framework="tensorflow", architecture="matrix_factorization",
                                          model_type="recommendation"))
        except Unimplemented:
            pass
        frameworks = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "sklearn", "scipy")
        print(",".join(sorted(m for m in frameworks if m in sys.modules)) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


# --- architectures: cnn, text_classifier, lstm ---


def arch_spec(architecture, model_type, epochs=3, hyperparameters=None, **config):
    raw = {"framework": "tensorflow", "architecture": architecture, "model_type": model_type, "epochs": epochs,
           "batch_size": 32, "hyperparameters": hyperparameters or {}, "seed": 7, **config}
    return TrainingSpec.from_dict(raw)


def _kinds(run):
    return [type(layer).__name__ for layer in run._model.layers]


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits as 64 pixel columns; 20% held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return TrainingData("classification", [f"pixel_{i}" for i in range(64)], "digit", X_train, y_train,
                        X_val, y_val, list(range(10)))


def cnn_spec(epochs=5, hyperparameters=None, **config):
    config = {"input_shape": [1, 8, 8], "batch_size": 64, "learning_rate": 0.01, **config}
    return arch_spec("cnn", "classification", epochs, {"filters": [8], **(hyperparameters or {})}, **config)


@pytest.fixture(scope="module")
def cnn_run(digits):
    return train(cnn_spec(), digits)


POSITIVE = ["good", "great", "excellent", "happy", "love", "wonderful", "nice", "superb"]
NEGATIVE = ["bad", "awful", "terrible", "sad", "hate", "horrible", "poor", "ugly"]
FILLER = ["the", "a", "movie", "was", "it", "and", "this", "film", "really", "very", "plot", "actors"]


@pytest.fixture(scope="module")
def reviews():
    """200 synthetic texts: six filler words and two words of the label's list, shuffled."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(200):
        label = ["neg", "pos"][i % 2]
        words = list(rng.choice(FILLER, 6)) + list(rng.choice(POSITIVE if label == "pos" else NEGATIVE, 2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
        labels.append(label)
    texts, labels = np.array(texts, dtype=object), np.array(labels, dtype=object)
    return TrainingData("classification", ["review"], "sentiment", texts[:160], labels[:160], texts[160:],
                        labels[160:], ["neg", "pos"], input_kind="text")


def text_spec(epochs=5, hyperparameters=None, **config):
    config = {"learning_rate": 0.01, "data": {"text_column": "review"}, **config}
    return arch_spec("text_classifier", "classification", epochs,
                     {"embedding_dim": 16, "max_length": 16, **(hyperparameters or {})}, **config)


@pytest.fixture(scope="module")
def text_run(reviews):
    return train(text_spec(), reviews)


@pytest.fixture(scope="module")
def sine():
    """A noisy sine (period 25) of 300 points around 10, as windows of 12; the last 15% validate."""
    rng = np.random.default_rng(0)
    series = 10 + 3 * np.sin(2 * np.pi * np.arange(300) / 25) + rng.normal(0, 0.3, 300)
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], 12).copy()
    y = series[12:]
    cut = int(len(y) * 0.85)
    data = TrainingData("forecasting", [f"value_lag_{12 - k}" for k in range(12)], "value", X[:cut], y[:cut],
                        X[cut:], y[cut:], None, input_kind="sequence")
    return data, float(series.std())


def lstm_spec(epochs=8, hyperparameters=None, **config):
    config = {"learning_rate": 0.01, **config}
    return arch_spec("lstm", "forecasting", epochs, {"hidden_size": 16, **(hyperparameters or {})}, **config)


@pytest.fixture(scope="module")
def lstm_run(sine):
    return train(lstm_spec(), sine[0])


def test_cnn_learns_digits(cnn_run, digits):
    run, results = cnn_run
    assert _kinds(run) == ["Reshape", "Permute", "Normalization", "Conv2D", "MaxPooling2D", "Flatten",
                           "Dense", "Dense"]
    assert run._model.layers[3].filters == 8 and run._model.layers[3].kernel_size == (3, 3)
    assert [layer.units for layer in run._model.layers if type(layer).__name__ == "Dense"] == [64, 10]
    final = results[-1].metrics
    assert set(final) == CLASSIFICATION_METRICS
    assert final["accuracy"] > 0.85
    assert final["validation_loss"] < results[0].metrics["validation_loss"]
    evaluated = run.evaluate(digits.X_val, digits.y_val)
    assert evaluated == pytest.approx({k: v for k, v in final.items()
                                       if k not in ("training_loss", "learning_rate", "gradient_norm")}, rel=1e-12)
    assert run.input_preprocessing == {}


def test_cnn_reads_channel_major_pixels_and_pools_while_it_can():
    # 3 channels of 4 x 4: the pixel columns are [C, H, W] row-major.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 48)) + np.repeat([0.0, 5.0, -5.0], 16)
    y = np.arange(40) % 2
    data = TrainingData("classification", [f"p{i}" for i in range(48)], "y", X[:32], y[:32], X[32:], y[32:], [0, 1])
    spec = cnn_spec(epochs=1, input_shape=[3, 4, 4], batch_size=8,
                    hyperparameters={"filters": [4, 4, 4], "kernel_size": 1, "hidden_units": [8]},
                    regularization={"batch_norm": True, "dropout": 0.2})
    run = adapter.create_run(spec, data)
    images = X[:32].reshape(-1, 3, 4, 4).transpose(0, 2, 3, 1)
    layers = run._model.layers
    np.testing.assert_allclose(layers[1](layers[0](X[:32].astype(np.float32))).numpy(), images, rtol=1e-6)
    # Normalization is per channel, over every pixel of the channel.
    np.testing.assert_allclose(run._norm.adapt_mean.numpy(), images.reshape(-1, 3).mean(axis=0), rtol=1e-5)
    # 4x4 -> 2x2 -> 1x1, then no pooling is left to do.
    assert _kinds(run)[3:] == ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                               "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                               "Conv2D", "BatchNormalization", "Activation",
                               "Flatten", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    run.train_epoch(1)
    check_parity(run.export("onnx"), run.predict_proba(data.X_val), data.X_val, atol=tfa.ONNX_TOLERANCE)


def test_cnn_input_shape_must_hold_the_pixel_columns(digits):
    violation = _violation(lambda: adapter.create_run(cnn_spec(input_shape=[1, 8, 7]), digits))
    assert violation.field == "model_config.input_shape"
    assert "56" in violation.description and "64" in violation.description


def test_cnn_onnx_and_savedmodel(cnn_run, digits, tmp_path):
    run, _ = cnn_run
    onnx_bytes = run.export("onnx")
    (feed,) = _onnx_inputs(onnx_bytes)
    assert feed == ("input", "tensor(float)", 64)
    assert check_parity(onnx_bytes, run.predict_proba(digits.X_val), digits.X_val, atol=tfa.ONNX_TOLERANCE) < 1e-4
    np.testing.assert_array_equal(onnx_predict(onnx_bytes, digits.X_val)["label"], run.predict(digits.X_val).values)
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    out = loaded.serve(digits.X_val.astype(np.float32))
    np.testing.assert_allclose(out["probabilities"].numpy(), run.predict_proba(digits.X_val), rtol=0, atol=1e-6)


def _onnx_inputs(onnx_bytes):
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    # (name, type, second dimension); the first (batch) dimension is symbolic.
    assert all(isinstance(i.shape[0], str) for i in session.get_inputs())
    return [(i.name, i.type, i.shape[1]) for i in session.get_inputs()]


def test_text_classifier_learns_two_word_lists(text_run, reviews):
    from engine.data.text import build_vocabulary

    run, results = text_run
    assert _kinds(run) == ["Embedding", "MaskedMean", "Dense", "Dense"]
    embedding = run._model.layers[0]
    assert embedding.mask_zero and embedding.output_dim == 16
    assert [layer.units for layer in run._model.layers[2:]] == [32, 2]
    final = results[-1].metrics
    assert set(final) == CLASSIFICATION_METRICS and final["accuracy"] > 0.9
    vocabulary = build_vocabulary(reviews.X_train, 5000)
    assert run.input_preprocessing == {"vocabulary": vocabulary, "max_length": 16, "tokenizer": "engine.data.text"}
    assert embedding.input_dim == len(vocabulary) + 2
    assert run.evaluate(reviews.X_val, reviews.y_val)["accuracy"] == final["accuracy"]
    assert list(run.predict(np.array(["a great and wonderful film", "awful, sad, terrible"], dtype=object)).values) == \
        ["pos", "neg"]


def test_masked_mean_averages_the_words_only(text_run):
    from engine.data.text import encode

    run, _ = text_run
    embedding, pool = run._model.layers[:2]
    ids = encode(["good movie", "", "!!!", "unseenword"], run._vocabulary, 16)
    pooled = pool(embedding(ids), mask=embedding.compute_mask(ids)).numpy()
    table = embedding.embeddings.numpy()
    np.testing.assert_allclose(pooled[0], table[ids[0, :2]].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(pooled[1:3], 0.0)  # no tokens: zeros, not NaN
    np.testing.assert_allclose(pooled[3], table[1], rtol=1e-6)  # the unknown word's embedding
    assert np.all(np.isfinite(run.predict_proba(np.array(["", None], dtype=object))))


def test_text_classifier_exports_take_token_ids(text_run, reviews, tmp_path):
    from engine.data.text import encode

    run, _ = text_run
    onnx_bytes = run.export("onnx")
    assert _onnx_inputs(onnx_bytes) == [("input", "tensor(int64)", 16)]
    out = run.onnx_outputs(onnx_bytes, reviews.X_val)
    assert set(out) == {"label", "probabilities"}
    np.testing.assert_allclose(out["probabilities"], run.predict_proba(reviews.X_val), rtol=0,
                               atol=tfa.ONNX_TOLERANCE)
    np.testing.assert_array_equal(out["label"], run.predict(reviews.X_val).values)
    # What an inference engine does with input_preprocessing: encode, then feed int64 ids.
    import onnxruntime as ort

    prep = run.input_preprocessing
    ids = encode(list(reviews.X_val), prep["vocabulary"], prep["max_length"])
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(["probabilities"], {"input": ids})[0], out["probabilities"])
    # Ids the embedding does not have are unknown words.
    odd = ids[:3].copy()
    odd[:, 0] = [10**6, -5, len(prep["vocabulary"]) + 2]
    unknown = ids[:3].copy()
    unknown[:, 0] = 1
    np.testing.assert_allclose(session.run(["probabilities"], {"input": odd})[0],
                               session.run(["probabilities"], {"input": unknown})[0], rtol=0, atol=1e-7)
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    served = loaded.serve(ids)
    np.testing.assert_allclose(served["probabilities"].numpy(), run.predict_proba(reviews.X_val), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(served["label"].numpy().astype(str), run.predict(reviews.X_val).values)


def test_text_classifier_keeps_its_checkpoints_vocabulary(text_run, reviews):
    run, _ = text_run
    state = run.state_bytes()
    other = copy.copy(reviews)
    other.X_train = np.array([t.replace("movie", "show") for t in reviews.X_train], dtype=object)
    resumed = adapter.load_run(text_spec(), other, state)
    assert resumed._vocabulary == run._vocabulary
    np.testing.assert_array_equal(resumed.predict_proba(reviews.X_val), run.predict_proba(reviews.X_val))
    # restore() into a run built on another vocabulary refuses.
    fresh = adapter.create_run(text_spec(), other)
    with pytest.raises(FailedPrecondition, match="vocabulary"):
        fresh.restore(state)


def test_a_text_classifier_loads_and_predicts_without_training_rows(text_run, reviews):
    run, _ = text_run
    empty = copy.copy(reviews)
    empty.X_train, empty.y_train, empty.X_val, empty.y_val = reviews.X_train[:0], reviews.y_train[:0], None, None
    empty.inference_only = True
    loaded = adapter.load_run(text_spec(), empty, run.state_bytes())
    predicted = loaded.predict(reviews.X_val)
    np.testing.assert_array_equal(predicted.probabilities, run.predict_proba(reviews.X_val))
    np.testing.assert_array_equal(predicted.values, run.predict(reviews.X_val).values)
    assert predicted.scores is None and set(predicted.values) <= {"neg", "pos"}


def test_text_without_words_is_named(reviews):
    data = copy.copy(reviews)
    data.X_train = np.array(["!!", "..."] * 10, dtype=object)
    data.y_train = np.array(["neg", "pos"] * 10, dtype=object)
    violation = _violation(lambda: adapter.create_run(text_spec(), data))
    assert violation.field == "data_config.text_column" and "'review'" in violation.description


def test_lstm_forecasts_a_noisy_sine(lstm_run, sine):
    data, std = sine
    run, results = lstm_run
    assert _kinds(run) == ["Normalization", "Reshape", "LSTM", "Dense"]
    assert run._model.layers[2].units == 16 and not run._model.layers[2].return_sequences
    final = results[-1].metrics
    assert set(final) == REGRESSION_METRICS
    assert final["rmse"] < 0.5 * std
    # One mean and variance over all window values; predictions are in series units.
    assert float(run._norm.adapt_mean.numpy()) == pytest.approx(data.X_train.mean(), rel=1e-5)
    assert abs(run.predict(data.X_val).values.mean() - 10) < 1
    assert run.evaluate(data.X_val, data.y_val) == pytest.approx(
        {k: final[k] for k in ("validation_loss", "rmse", "mae", "r2")}, rel=1e-12)
    assert run.class_labels is None and run.input_preprocessing == {}


def test_lstm_stacks_layers():
    spec = lstm_spec(hyperparameters={"hidden_size": 4, "num_layers": 3}, regularization={"dropout": 0.1,
                                                                                          "batch_norm": True})
    rng = np.random.default_rng(0)
    data = TrainingData("forecasting", ["a", "b", "c"], "v", rng.normal(size=(20, 3)), rng.normal(size=20),
                        input_kind="sequence")
    run = adapter.create_run(spec, data)
    assert _kinds(run) == ["Normalization", "Reshape", "LSTM", "Dropout", "LSTM", "Dropout", "LSTM", "Dropout",
                           "Dense"]
    assert [layer.return_sequences for layer in run._model.layers if type(layer).__name__ == "LSTM"] == \
        [True, True, False]
    assert "batch_norm does not apply to lstm networks: ignored" in run.train_epoch(1).logs


def test_lstm_onnx_and_savedmodel(lstm_run, sine, tmp_path):
    data, _ = sine
    run, _ = lstm_run
    onnx_bytes = run.export("onnx")
    assert _onnx_inputs(onnx_bytes) == [("input", "tensor(float)", 12)]
    out = onnx_predict(onnx_bytes, data.X_val)
    assert set(out) == {"variable"} and out["variable"].shape == (len(data.X_val), 1)
    check_parity(onnx_bytes, run.predict(data.X_val).values, data.X_val, atol=0.0, rtol=1e-4)
    # Exports trace the LSTM with Keras's generic implementation (on a GPU it would be cuDNN's).
    lstm = run._model.layers[2]
    with tfa._exporting(run._model, run._norm):
        assert lstm.use_cudnn is False
    assert lstm.use_cudnn == "auto"
    loaded = _load_savedmodel(run.export("savedmodel"), tmp_path)
    served = loaded.serve(data.X_val.astype(np.float32))["variable"].numpy()
    np.testing.assert_allclose(served[:, 0], run.predict(data.X_val).values, rtol=1e-6)


@pytest.mark.parametrize("architecture", ["cnn", "text_classifier", "lstm"])
def test_new_architectures_resume_exactly(architecture, digits, reviews, sine):
    if architecture == "cnn":
        spec = cnn_spec(epochs=3, regularization={"batch_norm": True, "dropout": 0.2, "l2": 0.001},
                        lr_scheduler={"type": "exponential", "gamma": 0.7})
        data = copy.copy(digits)
        data.X_train, data.y_train = digits.X_train[:400], digits.y_train[:400]
    elif architecture == "text_classifier":
        spec, data = text_spec(epochs=3, regularization={"dropout": 0.3}, optimizer="rmsprop"), reviews
    else:
        spec = lstm_spec(epochs=3, hyperparameters={"hidden_size": 8, "num_layers": 2},
                         regularization={"dropout": 0.2}, loss_function="huber", gradient_accumulation_steps=2)
        data = sine[0]
    whole, whole_results = train(spec, data)
    first, _ = train(spec, data, until=2)
    resumed = adapter.load_run(spec, copy.deepcopy(data), first.state_bytes())
    assert resumed.epoch == 2
    result = resumed.train_epoch(3)
    assert result.metrics == pytest.approx(whole_results[-1].metrics, rel=0, abs=1e-12)
    assert result.extra == whole_results[-1].extra
    np.testing.assert_allclose(resumed._raw(data.X_val), whole._raw(data.X_val), rtol=0, atol=1e-12)


def test_a_failed_text_onnx_check_fails_the_export(text_run, monkeypatch):
    run, _ = text_run
    monkeypatch.setattr(tfa, "ONNX_TOLERANCE", 1e-15)
    with pytest.raises(RuntimeError, match=r"ONNX export check failed: max difference \S+ > tolerance 1e-15"):
        run.export("onnx")


@pytest.mark.parametrize("raw, field, fragment", [
    ({"architecture": "cnn"}, "model_config.input_shape", "[channels, height, width]"),
    ({"architecture": "cnn", "input_shape": [8]}, "model_config.input_shape", "[height, width]"),
    ({"architecture": "cnn", "input_shape": [1, 8, 8], "hyperparameters": {"kernel_size": 2}},
     "model_config.hyperparameters.kernel_size", "odd"),
    ({"architecture": "cnn", "input_shape": [1, 8, 8], "hyperparameters": {"filters": []}},
     "model_config.hyperparameters.filters", "positive integers"),
    ({"architecture": "cnn", "input_shape": [1, 8, 8], "model_type": "regression"}, "model_type", "CLASSIFICATION"),
    ({"architecture": "text_classifier"}, "model_config.architecture", "text input"),
    ({"architecture": "text_classifier", "data": {"text_column": "t"}, "hyperparameters": {"vocab_size": 1}},
     "model_config.hyperparameters.vocab_size", ">= 2"),
    ({"architecture": "text_classifier", "data": {"text_column": "t"}, "hyperparameters": {"hidden_size": 8}},
     "model_config.hyperparameters.hidden_size", "unknown hyperparameter"),
    ({"architecture": "lstm"}, "model_type", "FORECASTING"),
    ({"architecture": "lstm", "model_type": "forecasting", "hyperparameters": {"num_layers": 5}},
     "model_config.hyperparameters.num_layers", "between 1 and 4"),
    ({"architecture": "lstm", "model_type": "forecasting", "loss_function": "cross_entropy"},
     "training_config.loss_function", "mse"),
    ({"architecture": "lstm", "model_type": "forecasting", "seed": 2**32}, "training_config.seed", "between 0"),
])
def test_new_architectures_validation_names_the_field(raw, field, fragment):
    raw = {"framework": "tensorflow", "model_type": "classification", **raw}
    violation = _violation(lambda: adapter.validate(TrainingSpec.from_dict(raw)))
    assert violation.field == field
    assert fragment in violation.description
