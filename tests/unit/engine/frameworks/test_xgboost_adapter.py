import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.errors import FailedPrecondition, InvalidArgument
from engine.export.parity import check_parity, onnx_predict
from engine.frameworks import xgboost_adapter
from engine.frameworks.xgboost_adapter import HYPERPARAMETERS, XGBoostAdapter
from engine.jobs.spec import TrainingSpec

REPO = Path(__file__).resolve().parents[4]
adapter = XGBoostAdapter()


# The cancer, iris and diabetes fixtures come from conftest.py.


def make_spec(model_type="classification", architecture=None, epochs=10, hyperparameters=None, **config):
    raw = {"framework": "xgboost", "model_type": model_type, "epochs": epochs, "seed": 7,
           "architecture": architecture if architecture is not None else (
               "regressor" if model_type == "regression" else "classifier"),
           "hyperparameters": hyperparameters or {}, **config}
    return TrainingSpec.from_dict(raw)


def train(spec, data, until=None):
    run = adapter.create_run(spec, data)
    results = [run.train_epoch(epoch) for epoch in range(1, (until or run.total_epochs) + 1)]
    return run, results


def xgb_matrix(X):
    import xgboost as xgb

    return xgb.DMatrix(X)


def booster_proba(run, X):
    import xgboost as xgb

    p = run.booster.predict(xgb.DMatrix(X))
    return np.column_stack([1 - p, p]) if p.ndim == 1 else p


CLASSIFICATION_METRICS = {"training_loss", "validation_loss", "accuracy", "precision", "recall", "f1_score",
                          "learning_rate"}
REGRESSION_METRICS = {"training_loss", "validation_loss", "rmse", "mae", "r2", "learning_rate"}


# --- training ---


def test_breast_cancer_learns_and_validation_loss_falls(cancer):
    run, results = train(make_spec(epochs=15), cancer)
    assert run.total_epochs == 15 and run.booster.num_boosted_rounds() == 15
    assert set(results[-1].metrics) == CLASSIFICATION_METRICS
    assert results[-1].metrics["accuracy"] > 0.9
    assert results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"]
    assert results[-1].metrics["training_loss"] < results[0].metrics["training_loss"]
    assert all(r.metrics["learning_rate"] == 0.3 for r in results)
    assert results[0].logs == ["15 boosting rounds (one per epoch), eta 0.3"]


def test_iris_multiclass_learns_without_warnings(iris):
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        run, results = train(make_spec(epochs=12), iris)
    assert not escaped, [str(w.message) for w in escaped]
    assert set(results[-1].metrics) == CLASSIFICATION_METRICS
    assert results[-1].metrics["accuracy"] > 0.9
    assert results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"]
    assert booster_proba(run, iris.X_val).shape == (len(iris.y_val), 3)
    assert run.class_labels == [0, 1, 2]


def test_diabetes_regression_learns(diabetes):
    run, results = train(make_spec("regression", epochs=20, learning_rate=0.1, hyperparameters={"max_depth": 3}),
                         diabetes)
    last = results[-1].metrics
    assert set(last) == REGRESSION_METRICS
    assert last["validation_loss"] < results[0].metrics["validation_loss"]
    assert last["r2"] > 0.25 > results[0].metrics["r2"]
    assert run.class_labels is None


def test_losses_are_xgboosts_eval_metrics(cancer, iris, diabetes):
    from sklearn.metrics import log_loss, mean_squared_error

    for data in (cancer, iris):
        run, results = train(make_spec(epochs=3), data)
        proba = booster_proba(run, data.X_val)
        assert results[-1].metrics["validation_loss"] == pytest.approx(log_loss(data.y_val, proba), rel=1e-5)
        train_proba = booster_proba(run, data.X_train)
        assert results[-1].metrics["training_loss"] == pytest.approx(log_loss(data.y_train, train_proba), rel=1e-5)
    run, results = train(make_spec("regression", epochs=3), diabetes)
    rmse = np.sqrt(mean_squared_error(diabetes.y_val, run.booster.predict(__import__("xgboost").DMatrix(
        diabetes.X_val))))
    assert results[-1].metrics["validation_loss"] == pytest.approx(rmse, rel=1e-6)
    assert results[-1].metrics["rmse"] == pytest.approx(results[-1].metrics["validation_loss"], rel=1e-6)


def test_n_epochs_build_the_model_xgb_train_builds_in_n_rounds(iris):
    import xgboost as xgb

    run, _ = train(make_spec(epochs=8, hyperparameters={"max_depth": 3}), iris)
    dtrain = xgb.DMatrix(iris.X_train, label=iris.y_train)
    reference = xgb.train(run._params, dtrain, num_boost_round=8)
    np.testing.assert_array_equal(run.booster.predict(xgb.DMatrix(iris.X_val)),
                                  reference.predict(xgb.DMatrix(iris.X_val)))


def test_training_config_maps_onto_booster_parameters(cancer):
    spec = make_spec(epochs=2, learning_rate=0.05, seed=123, regularization={"l1": 0.5, "l2": 2.0},
                     hyperparameters={"max_depth": 3.0, "max_bin": 64.0, "subsample": 0.8})
    run, results = train(spec, cancer)
    config = json.loads(run.booster.save_config())["learner"]
    tree = config["gradient_booster"]["tree_train_param"]
    assert float(tree["eta"]) == pytest.approx(0.05)
    assert float(tree["alpha"]) == pytest.approx(0.5) and float(tree["lambda"]) == pytest.approx(2.0)
    assert tree["max_depth"] == "3" and float(tree["subsample"]) == pytest.approx(0.8)
    assert config["generic_param"]["seed"] == "123"
    assert config["generic_param"]["nthread"] == str(len(os.sched_getaffinity(0)))
    assert config["objective"]["name"] == "binary:logistic"
    assert results[-1].metrics["learning_rate"] == 0.05
    # 0 (the proto default) keeps XGBoost's own defaults: eta 0.3, lambda 1.
    run, _ = train(make_spec(epochs=1), cancer)
    tree = json.loads(run.booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    assert float(tree["eta"]) == pytest.approx(0.3) and float(tree["lambda"]) == 1.0


def test_seed_makes_sampled_runs_reproducible(cancer):
    hps = {"subsample": 0.6, "colsample_bytree": 0.6}
    a, _ = train(make_spec(epochs=5, hyperparameters=hps), cancer)
    b, _ = train(make_spec(epochs=5, hyperparameters=hps), cancer)
    c, _ = train(make_spec(epochs=5, hyperparameters=hps, seed=8), cancer)
    np.testing.assert_array_equal(booster_proba(a, cancer.X_val), booster_proba(b, cancer.X_val))
    assert np.abs(booster_proba(a, cancer.X_val) - booster_proba(c, cancer.X_val)).max() > 1e-3


def test_every_allowed_hyperparameter_is_a_booster_parameter(cancer):
    # The allow-list is written out by hand so validate() needs no xgboost; with
    # validate_parameters on, XGBoost warns about any parameter it does not use.
    hps = {"max_depth": 3, "min_child_weight": 1.5, "subsample": 0.9, "colsample_bytree": 0.9,
           "colsample_bylevel": 0.9, "gamma": 0.1, "max_bin": 64, "tree_method": "hist", "scale_pos_weight": 2.0,
           "max_delta_step": 1.0, "grow_policy": "lossguide", "max_leaves": 8, "device": "cpu"}
    assert set(hps) == set(HYPERPARAMETERS)
    run, results = train(make_spec(epochs=1, hyperparameters=hps), cancer)
    assert not [line for line in results[0].logs if "not used" in line], results[0].logs


@pytest.mark.skipif(__import__("xgboost").build_info().get("USE_CUDA", False), reason="this xgboost has CUDA")
def test_cuda_without_cuda_support_trains_on_the_cpu_and_says_so(cancer):
    run, results = train(make_spec(epochs=1, hyperparameters={"device": "cuda"}), cancer)
    assert "this xgboost build has no CUDA support: training runs on the CPU" in results[0].logs
    assert any(line.startswith("xgboost: Device is changed from GPU to CPU") for line in results[0].logs)


def test_labels_of_any_type_are_encoded_and_decoded(iris):
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    data = copy.copy(iris)
    data.y_train, data.y_val = names[iris.y_train], names[iris.y_val]
    data.classes = sorted(names.tolist())
    run, results = train(make_spec(epochs=5), data)
    assert run.class_labels == ["setosa", "versicolor", "virginica"]
    numeric, numeric_results = train(make_spec(epochs=5), iris)
    assert results[-1].metrics == pytest.approx(numeric_results[-1].metrics)
    assert run.evaluate(data.X_val, data.y_val)["accuracy"] == results[-1].metrics["accuracy"]
    with pytest.raises(InvalidArgument) as err:
        run.evaluate(data.X_val[:2], np.array(["setosa", "daisy"], dtype=object))
    assert err.value.violations[0].field == "data_config.label_column" and "daisy" in err.value.message
    predicted = run.predict(data.X_val)
    np.testing.assert_allclose(predicted.probabilities, booster_proba(run, data.X_val), rtol=1e-6)
    np.testing.assert_array_equal(predicted.values, names[np.argmax(predicted.probabilities, axis=1)])
    assert predicted.scores is None and np.mean(predicted.values == data.y_val) == results[-1].metrics["accuracy"]


def test_a_class_seen_only_in_validation_gets_a_column(iris):
    data = copy.copy(iris)
    keep = iris.y_train != 2
    data.X_train, data.y_train = iris.X_train[keep], iris.y_train[keep]
    run, results = train(make_spec(epochs=3), data)
    assert any("classes [2] are not in the training data" in line for line in results[0].logs)
    assert booster_proba(run, iris.X_val).shape[1] == 3 and run.class_labels == [0, 1, 2]


def test_without_validation_data_metrics_use_the_training_data(cancer):
    data = copy.copy(cancer)
    data.X_val = data.y_val = None
    run, results = train(make_spec(epochs=2), data)
    assert any("no validation data" in line for line in results[0].logs)
    assert results[-1].metrics["validation_loss"] == results[-1].metrics["training_loss"]
    assert run.export("onnx")  # parity is checked on the training rows instead


def test_evaluate_matches_the_epoch_metrics(cancer, diabetes):
    for spec, data in ((make_spec(epochs=3), cancer), (make_spec("regression", epochs=3), diabetes)):
        run, results = train(spec, data)
        expected = {k: v for k, v in results[-1].metrics.items() if k not in ("training_loss", "learning_rate")}
        assert run.evaluate(data.X_val, data.y_val) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(run.predict(diabetes.X_val).values, run.booster.predict(xgb_matrix(diabetes.X_val)))


def test_untrained_runs_cannot_export_or_evaluate(cancer):
    run = adapter.create_run(make_spec(), cancer)
    for call in (lambda: run.export("onnx"), lambda: run.evaluate(cancer.X_val, cancer.y_val),
                 lambda: run.class_labels, lambda: run.predict(cancer.X_val)):
        with pytest.raises(FailedPrecondition):
            call()


def test_epochs_must_come_in_order(cancer):
    run = adapter.create_run(make_spec(epochs=2), cancer)
    with pytest.raises(ValueError, match="next is 1"):
        run.train_epoch(2)
    run.train_epoch(1)
    run.train_epoch(2)
    with pytest.raises(ValueError, match="complete"):
        run.train_epoch(3)


def test_versions():
    v = adapter.versions()
    assert set(v) == {"xgboost", "numpy", "onnxmltools", "onnx", "python"}
    assert all(isinstance(x, str) and x[0].isdigit() for x in v.values())


# --- export ---


@pytest.mark.parametrize("dataset", ["cancer", "iris"])
def test_onnx_probabilities_match_the_booster(dataset, request):
    data = request.getfixturevalue(dataset)
    run, _ = train(make_spec(epochs=15), data)
    onnx_bytes = run.export("onnx")
    out = onnx_predict(onnx_bytes, data.X_val)
    assert set(out) == {"label", "probabilities"}
    proba = booster_proba(run, data.X_val)
    assert check_parity(onnx_bytes, proba, data.X_val, atol=1e-4) < 1e-4
    np.testing.assert_array_equal(out["label"], np.argmax(out["probabilities"], axis=1))


def test_onnx_regression_predictions_match_the_booster(diabetes):
    import xgboost as xgb

    run, _ = train(make_spec("regression", epochs=15), diabetes)
    onnx_bytes = run.export("onnx")
    assert set(onnx_predict(onnx_bytes, diabetes.X_val)) == {"variable"}
    check_parity(onnx_bytes, run.booster.predict(xgb.DMatrix(diabetes.X_val)), diabetes.X_val, atol=0.0, rtol=1e-4)


def test_a_failed_onnx_check_fails_the_export(cancer, monkeypatch):
    run, _ = train(make_spec(epochs=2), cancer)
    monkeypatch.setattr(xgboost_adapter, "PROBABILITY_ATOL", -1.0)
    with pytest.raises(RuntimeError, match=r"^ONNX export check failed: max difference \S+ > tolerance -1$"):
        run.export("onnx")


@pytest.mark.parametrize("dataset, cls", [("cancer", "XGBClassifier"), ("iris", "XGBClassifier"),
                                          ("diabetes", "XGBRegressor")])
def test_pickle_round_trip_predicts_identically(dataset, cls, request):
    import xgboost as xgb

    data = request.getfixturevalue(dataset)
    task = "regression" if dataset == "diabetes" else "classification"
    run, _ = train(make_spec(task, epochs=5), data)
    loaded = pickle.loads(run.export("pickle"))
    assert type(loaded).__name__ == cls
    if task == "classification":
        np.testing.assert_array_equal(loaded.predict_proba(data.X_val), booster_proba(run, data.X_val))
        np.testing.assert_array_equal(loaded.predict(data.X_val), np.argmax(booster_proba(run, data.X_val), axis=1))
    else:
        np.testing.assert_array_equal(loaded.predict(data.X_val), run.booster.predict(xgb.DMatrix(data.X_val)))


def test_xgboost_json_loads_into_a_fresh_booster(iris):
    import xgboost as xgb

    run, _ = train(make_spec(epochs=5), iris)
    exported = run.export("xgboost_json")
    assert json.loads(exported)["learner"]["objective"]["name"] == "multi:softprob"
    fresh = xgb.Booster(model_file=bytearray(exported))
    assert fresh.num_boosted_rounds() == 5
    dval = xgb.DMatrix(iris.X_val)
    np.testing.assert_array_equal(fresh.predict(dval), run.booster.predict(dval))


def test_export_rejects_formats_xgboost_has_not(cancer):
    run, _ = train(make_spec(epochs=1), cancer)
    assert run.export_formats == ["onnx", "pickle", "xgboost_json"]
    for fmt in ("savedmodel", "torch", "bogus"):
        with pytest.raises(InvalidArgument) as err:
            run.export(fmt)
        assert err.value.violations[0].field == "format"


# --- checkpoints ---


@pytest.mark.parametrize("dataset, task, hyperparameters", [
    ("cancer", "classification", {}),
    ("iris", "classification", {"max_depth": 3}),
    ("diabetes", "regression", {}),
    # Sampled rows and columns: the draws after the resume must be those of the whole run.
    ("cancer", "classification", {"subsample": 0.7, "colsample_bytree": 0.7, "colsample_bylevel": 0.8}),
    ("diabetes", "regression", {"subsample": 0.6, "colsample_bytree": 0.7}),
    ("iris", "classification", {"tree_method": "approx", "subsample": 0.6, "colsample_bylevel": 0.7}),
    ("iris", "classification", {"tree_method": "exact", "subsample": 0.7, "colsample_bytree": 0.7}),
    # Rows sampled, columns not: the tree updaters' row sampler is rebuilt every round too.
    ("cancer", "classification", {"subsample": 0.7}),
    ("iris", "classification", {"tree_method": "approx", "subsample": 0.6}),
    ("iris", "classification", {"tree_method": "exact", "subsample": 0.7}),
])
def test_resumed_run_equals_an_uninterrupted_one(dataset, task, hyperparameters, request):
    import xgboost as xgb

    data = request.getfixturevalue(dataset)
    spec = make_spec(task, epochs=10, hyperparameters=hyperparameters)
    whole, whole_results = train(spec, data)

    first, _ = train(spec, data, until=4)
    resumed = XGBoostAdapter().load_run(spec, copy.deepcopy(data), first.state_bytes())
    assert resumed.epoch == 4
    resumed_results = [resumed.train_epoch(epoch) for epoch in range(5, 11)]

    assert resumed_results[-1].metrics == pytest.approx(whole_results[-1].metrics, rel=1e-9, abs=1e-9)
    dval = xgb.DMatrix(data.X_val)
    np.testing.assert_allclose(resumed.booster.predict(dval), whole.booster.predict(dval), rtol=0, atol=1e-6)


def test_resuming_an_approx_regressor_with_subsampling_says_it_differs(diabetes):
    spec = make_spec("regression", epochs=4, hyperparameters={"tree_method": "approx", "subsample": 0.6})
    first, _ = train(spec, diabetes, until=2)
    assert not any("re-sketches" in line for line in first.train_epoch(3).logs)
    resumed = adapter.load_run(spec, diabetes, first.state_bytes())
    assert any("re-sketches" in line for line in resumed.train_epoch(4).logs)


def test_restore_rejects_other_checkpoints(cancer, iris, diabetes):
    run, _ = train(make_spec(epochs=1), cancer)
    with pytest.raises(FailedPrecondition, match="2 classes"):
        adapter.load_run(make_spec(epochs=3), iris, run.state_bytes())
    with pytest.raises(FailedPrecondition, match="regressor"):
        adapter.load_run(make_spec("regression"), diabetes, run.state_bytes())
    with pytest.raises(FailedPrecondition, match="not written by the xgboost adapter"):
        adapter.load_run(make_spec(), cancer, pickle.dumps({"format": 1}))


# --- validation ---


def _violation(call):
    with pytest.raises(InvalidArgument) as err:
        call()
    (violation,) = err.value.violations
    assert err.value.message.startswith(violation.field + ": ")
    return violation


@pytest.mark.parametrize("changes, field, fragment", [
    ({"model_type": ""}, "model_type", "required; xgboost supports: classification, regression"),
    ({"model_type": "forecasting"}, "model_type", "xgboost supports: classification, regression"),
    ({"model_type": "anomaly_detection"}, "model_type", "not supported by xgboost"),
    ({"architecture": ""}, "model_config.architecture", "required; for classification use classifier"),
    ({"architecture": "mlp"}, "model_config.architecture", "unknown xgboost architecture 'mlp'"),
    ({"architecture": "regressor"}, "model_config.architecture", "not a classification architecture"),
    ({"hyperparameters": {"max_depthh": 3}}, "model_config.hyperparameters.max_depthh", "valid: colsample_bylevel"),
    ({"hyperparameters": {"eta": 0.1}}, "model_config.hyperparameters.eta", "training_config.learning_rate"),
    ({"hyperparameters": {"lambda": 1}}, "model_config.hyperparameters.lambda", "regularization.l2"),
    ({"hyperparameters": {"n_estimators": 100}}, "model_config.hyperparameters.n_estimators",
     "training_config.epochs"),
    ({"hyperparameters": {"objective": "reg:tweedie"}}, "model_config.hyperparameters.objective", "model_type"),
    ({"hyperparameters": {"nthread": 8}}, "model_config.hyperparameters.nthread", "all CPUs"),
    ({"hyperparameters": {"max_depth": 2.5}}, "model_config.hyperparameters.max_depth", "whole number"),
    ({"hyperparameters": {"max_depth": -1}}, "model_config.hyperparameters.max_depth", "0 or more"),
    ({"hyperparameters": {"max_depth": True}}, "model_config.hyperparameters.max_depth", "whole number"),
    ({"hyperparameters": {"subsample": 0}}, "model_config.hyperparameters.subsample", "above 0 and at most 1"),
    ({"hyperparameters": {"colsample_bytree": 1.5}}, "model_config.hyperparameters.colsample_bytree", "at most 1"),
    ({"hyperparameters": {"max_bin": 1}}, "model_config.hyperparameters.max_bin", "2 or more"),
    ({"hyperparameters": {"gamma": "big"}}, "model_config.hyperparameters.gamma", "a number"),
    ({"hyperparameters": {"scale_pos_weight": 0}}, "model_config.hyperparameters.scale_pos_weight", "above 0"),
    ({"hyperparameters": {"tree_method": "gpu_hist"}}, "model_config.hyperparameters.tree_method",
     "hist, approx, exact"),
    ({"hyperparameters": {"device": "tpu"}}, "model_config.hyperparameters.device", "cpu, cuda"),
    ({"hyperparameters": {"grow_policy": "greedy"}}, "model_config.hyperparameters.grow_policy", "lossguide"),
    ({"hyperparameters": {"tree_method": "exact", "grow_policy": "lossguide"}},
     "model_config.hyperparameters.grow_policy", "not exact"),
    ({"hyperparameters": {"tree_method": "exact", "max_depth": 0}}, "model_config.hyperparameters.max_depth",
     "hist or approx"),
    ({"hyperparameters": {"tree_method": "exact", "device": "cuda"}}, "model_config.hyperparameters.tree_method",
     "no CUDA"),
    ({"epochs": 0}, "training_config.epochs", "between 1 and 10000"),
    ({"epochs": 10001}, "training_config.epochs", "between 1 and 10000"),
    ({"seed": -1}, "training_config.seed", "between 0"),
    ({"learning_rate": -0.1}, "training_config.learning_rate", "positive"),
    ({"learning_rate": float("nan")}, "training_config.learning_rate", "positive"),
    ({"optimizer": "adam"}, "training_config.optimizer", "leave it empty"),
    ({"optimizer_config": {"momentum": 0.9}}, "training_config.optimizer_config", "hyperparameters"),
    ({"loss_function": "mse"}, "training_config.loss_function", "cross_entropy or binary_cross_entropy"),
    ({"regularization": {"l1": -1.0}}, "training_config.regularization.l1", "0 or positive"),
    ({"regularization": {"l2": float("inf")}}, "training_config.regularization.l2", "0 or positive"),
    ({"regularization": {"dropout": 0.5}}, "training_config.regularization.dropout", "neural networks"),
    ({"regularization": {"batch_norm": True}}, "training_config.regularization.batch_norm", "neural networks"),
    ({"regularization": {"weight_decay": 0.01}}, "training_config.regularization.weight_decay", "use l2"),
    ({"regularization": {"gradient_clip_norm": 1.0}}, "training_config.regularization.gradient_clip_norm",
     "max_delta_step"),
    ({"mixed_precision": True}, "training_config.mixed_precision", "set it to false"),
    ({"gradient_accumulation_steps": 4}, "training_config.gradient_accumulation_steps", "leave it 0"),
    ({"lr_scheduler": {"type": "cosine"}}, "training_config.lr_scheduler.type", "constant"),
])
def test_validation_names_the_field(changes, field, fragment):
    violation = _violation(lambda: adapter.validate(make_spec(**changes)))
    assert violation.field == field
    assert fragment in violation.description


@pytest.mark.parametrize("changes, field, fragment", [
    ({"loss_function": "cross_entropy"}, "training_config.loss_function", "mse"),
    ({"loss_function": "huber"}, "training_config.loss_function", "mse"),
    ({"architecture": "classifier"}, "model_config.architecture", "use regressor or gradient_boosting"),
    ({"hyperparameters": {"scale_pos_weight": 3}}, "model_config.hyperparameters.scale_pos_weight", "regressor"),
])
def test_regression_validation_names_the_field(changes, field, fragment):
    violation = _violation(lambda: adapter.validate(make_spec("regression", **changes)))
    assert violation.field == field
    assert fragment in violation.description


def test_natural_settings_are_accepted():
    for model_type in ("classification", "regression"):
        spec = make_spec(model_type, architecture="gradient_boosting", epochs=10000, learning_rate=1.5,
                         regularization={"l1": 1, "l2": 3}, gradient_accumulation_steps=1,
                         lr_scheduler={"type": "constant"}, seed=2**63 - 1)
        adapter.validate(spec)
        assert adapter.planned_epochs(spec) == 10000
    adapter.validate(make_spec(loss_function="cross_entropy"))
    adapter.validate(make_spec(loss_function="binary_cross_entropy"))
    adapter.validate(make_spec("regression", loss_function="mse"))
    adapter.validate(make_spec(hyperparameters={"max_depth": 0, "grow_policy": "lossguide", "max_leaves": 16}))


def test_gradient_boosting_is_the_model_types_architecture(cancer, diabetes):
    run, _ = train(make_spec(architecture="gradient_boosting", epochs=1), cancer)
    assert json.loads(run.booster.save_config())["learner"]["objective"]["name"] == "binary:logistic"
    run, _ = train(make_spec("regression", architecture="gradient_boosting", epochs=1), diabetes)
    assert json.loads(run.booster.save_config())["learner"]["objective"]["name"] == "reg:squarederror"


def test_data_problems_are_named(cancer, iris):
    violation = _violation(lambda: adapter.create_run(make_spec(loss_function="binary_cross_entropy"), iris))
    assert violation.field == "training_config.loss_function" and "3" in violation.description
    violation = _violation(lambda: adapter.create_run(make_spec(hyperparameters={"scale_pos_weight": 2}), iris))
    assert violation.field == "model_config.hyperparameters.scale_pos_weight"
    one_class = copy.copy(cancer)
    keep = cancer.y_train == 1
    one_class.X_train, one_class.y_train = cancer.X_train[keep], cancer.y_train[keep]
    violation = _violation(lambda: adapter.create_run(make_spec(), one_class))
    assert violation.field == "data_config.label_column"


def test_errors_xgboost_raises_about_a_hyperparameter_name_it(cancer, monkeypatch):
    from xgboost.core import XGBoostError

    run = adapter.create_run(make_spec(hyperparameters={"max_depth": 4}), cancer)

    def reject(*args, **kwargs):
        raise XGBoostError("[06:34:00] /workspace/src/tree/param.h:12: value 4 for Parameter max_depth is bad\n"
                           "Stack trace: ...")

    monkeypatch.setattr(run._booster, "update", reject)
    violation = _violation(lambda: run.train_epoch(1))
    assert violation.field == "model_config.hyperparameters.max_depth"
    assert violation.description == "xgboost rejected it: value 4 for Parameter max_depth is bad"


def test_validating_in_the_server_process_loads_no_framework():
    # The server validates specs without paying for (or depending on) xgboost, sklearn and ONNX.
    script = textwrap.dedent("""
        import sys
        from engine.frameworks.registry import get_adapter
        from engine.jobs.spec import TrainingSpec
        adapter = get_adapter("xgboost")
        for arch, task in [("classifier", "classification"), ("gradient_boosting", "regression")]:
            spec = TrainingSpec(framework="xgboost", architecture=arch, model_type=task, epochs=7,
                                hyperparameters={"max_depth": 4.0, "tree_method": "hist"})
            adapter.validate(spec)
            assert adapter.planned_epochs(spec) == 7
        modules = ("xgboost", "sklearn", "scipy", "onnx", "onnxruntime", "onnxmltools")
        print(",".join(m for m in modules if m in sys.modules) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
