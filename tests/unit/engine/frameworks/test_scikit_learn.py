import copy
import pickle
import warnings

import numpy as np
import pytest

from engine.errors import FailedPrecondition, InvalidArgument
from engine.export.parity import check_parity, onnx_predict
from engine.frameworks.base import TrainingData
from engine.frameworks.scikit_learn import _ARCHS, SklearnAdapter
from engine.jobs.spec import TrainingSpec

adapter = SklearnAdapter()


# The cancer, iris and diabetes fixtures come from conftest.py.


def make_spec(architecture, model_type="classification", epochs=3, hyperparameters=None, **config):
    raw = {"framework": "sklearn", "architecture": architecture, "model_type": model_type, "epochs": epochs,
           "hyperparameters": hyperparameters or {}, "seed": 7, **config}
    return TrainingSpec.from_dict(raw)


def train(spec, data, until=None):
    """Train from epoch 1 until `until` (default: the end), honouring `finished`."""
    run = adapter.create_run(spec, data)
    results = []
    for epoch in range(1, (until or run.total_epochs) + 1):
        results.append(run.train_epoch(epoch))
        if results[-1].finished:
            break
    return run, results


# --- training ---


def test_logistic_regression_learns_breast_cancer_in_five_epochs(cancer):
    spec = make_spec("logistic_regression", epochs=5, hyperparameters={"max_iter": 5})
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        run, results = train(spec, cancer)
    assert not [w for w in escaped if w.category.__name__ == "ConvergenceWarning"]
    assert len(results) == 5 and run.total_epochs == 5
    assert any("ConvergenceWarning" in line for line in results[0].logs)
    assert all(r.extra["iterations"] == 5 for r in results)
    assert results[-1].metrics["accuracy"] > 0.9
    assert results[-1].metrics["validation_loss"] < results[0].metrics["validation_loss"]
    assert set(results[-1].metrics) == {
        "training_loss", "validation_loss", "accuracy", "precision", "recall", "f1_score"}


def test_logistic_regression_finishes_when_the_solver_converges(cancer):
    run, results = train(make_spec("logistic_regression", epochs=10), cancer)
    assert len(results) < 10 and results[-1].finished
    assert any("converged" in line for line in results[-1].logs)
    with pytest.raises(ValueError, match="complete"):
        run.train_epoch(len(results) + 1)


def test_sgd_with_a_constant_learning_rate_lowers_validation_loss_every_epoch(cancer):
    spec = make_spec("sgd", epochs=10, learning_rate=0.01)
    _, results = train(spec, cancer)
    losses = [r.metrics["validation_loss"] for r in results]
    assert len(losses) == 10
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.7 * losses[0]
    assert all(r.metrics["learning_rate"] == 0.01 for r in results)
    assert results[-1].metrics["accuracy"] > 0.9


def test_sgd_default_schedule_reports_a_decaying_learning_rate(cancer):
    _, results = train(make_spec("sgd", epochs=3), cancer)
    rates = [r.metrics["learning_rate"] for r in results]
    assert rates[0] > rates[1] > rates[2] > 0


def test_sgd_epochs_shuffle_differently(cancer):
    # partial_fit alone would replay one order per epoch; each epoch gets its own seed.
    run = adapter.create_run(make_spec("sgd", epochs=2), cancer)
    seeds = []
    for epoch in (1, 2):
        run.train_epoch(epoch)
        seeds.append(run.pipeline()["model"].random_state)
    assert seeds[0] != seeds[1]


def test_random_forest_grows_trees_each_epoch(cancer):
    spec = make_spec("random_forest", epochs=4, hyperparameters={"n_estimators_per_epoch": 3})
    run, results = train(spec, cancer)
    assert [r.extra["n_estimators"] for r in results] == [3, 6, 9, 12]
    assert len(run.pipeline()["model"].estimators_) == 12
    assert "12 trees over 4 epochs" in results[0].logs


def test_trees_are_spread_over_epochs_and_cap_them(cancer):
    assert adapter.planned_epochs(make_spec("random_forest", epochs=10)) == 10
    spec = make_spec("gradient_boosting", epochs=10, hyperparameters={"n_estimators": 4.0})
    assert adapter.planned_epochs(spec) == 4
    _, results = train(spec, cancer)
    assert [r.extra["n_estimators"] for r in results] == [1, 2, 3, 4]
    assert any("reduced from 10 to 4" in line for line in results[0].logs)


@pytest.mark.parametrize("architecture, model_type", [
    ("svm", "classification"), ("linear_regression", "regression"), ("ridge", "regression")])
def test_one_pass_estimators_take_one_finished_epoch(architecture, model_type, cancer, diabetes):
    data = cancer if model_type == "classification" else diabetes
    spec = make_spec(architecture, model_type, epochs=20)
    assert adapter.planned_epochs(spec) == 1
    run, results = train(spec, data)
    assert run.total_epochs == 1 and len(results) == 1 and results[0].finished
    with pytest.raises(ValueError):
        run.train_epoch(2)


def test_regression_metrics(diabetes):
    _, results = train(make_spec("ridge", "regression"), diabetes)
    m = results[0].metrics
    assert set(m) == {"training_loss", "validation_loss", "rmse", "mae", "r2"}
    assert m["rmse"] == pytest.approx(m["validation_loss"] ** 0.5)
    assert 0.2 < m["r2"] < 0.7  # diabetes is a hard problem for a linear model


def test_gradient_boosting_takes_the_learning_rate(diabetes):
    _, results = train(make_spec("gradient_boosting", "regression", epochs=2, learning_rate=0.05,
                                 hyperparameters={"n_estimators": 10}), diabetes)
    assert results[-1].metrics["learning_rate"] == 0.05


def test_struct_numbers_become_ints_where_sklearn_needs_them(cancer):
    spec = make_spec("random_forest", epochs=1, hyperparameters={"n_estimators": 5.0, "max_depth": 3.0,
                                                                  "min_samples_leaf": 2.0, "max_features": 1.0})
    run, _ = train(spec, cancer)
    params = run.pipeline()["model"].get_params()
    assert params["max_depth"] == 3 and isinstance(params["max_depth"], int)
    assert params["min_samples_leaf"] == 2 and isinstance(params["min_samples_leaf"], int)
    assert params["max_features"] == 1.0 and isinstance(params["max_features"], float)  # all features


def test_seed_makes_runs_reproducible(cancer):
    def proba(seed):
        run, _ = train(make_spec("random_forest", epochs=1, seed=seed, hyperparameters={"n_estimators": 5}), cancer)
        return run.pipeline().predict_proba(cancer.X_val)

    np.testing.assert_array_equal(proba(1), proba(1))
    assert not np.array_equal(proba(1), proba(2))


def test_l1_gives_a_sparse_logistic_regression(cancer):
    def zeros(**regularization):
        spec = make_spec("logistic_regression", epochs=3, regularization=regularization)
        run, _ = train(spec, cancer)
        model = run.pipeline()["model"]
        return model, int(np.sum(model.coef_ == 0))

    sparse, n_sparse = zeros(l1=1.0)
    assert sparse.solver == "saga" and sparse.l1_ratio == 1.0 and sparse.C == 1.0
    assert n_sparse > 5  # 9 of 30 coefficients are exactly zero
    dense, n_dense = zeros(l2=0.5)
    assert dense.C == 2.0 and n_dense == 0


def test_sgd_elastic_net_mapping(diabetes):
    run, _ = train(make_spec("sgd", "regression", epochs=1, regularization={"l1": 0.01, "l2": 0.03}), diabetes)
    model = run.pipeline()["model"]
    assert (model.penalty, model.alpha, model.l1_ratio) == ("elasticnet", pytest.approx(0.04), pytest.approx(0.25))


def test_class_weight_keys_are_matched_to_labels(cancer):
    spec = make_spec("logistic_regression", epochs=1, hyperparameters={"class_weight": {"0": 3.0, "1": 1.0}})
    run, _ = train(spec, cancer)
    assert run.pipeline()["model"].class_weight == {0: 3.0, 1: 1.0}
    with pytest.raises(InvalidArgument) as err:
        adapter.create_run(make_spec("logistic_regression", hyperparameters={"class_weight": {"7": 1.0}}), cancer)
    assert err.value.violations[0].field == "model_config.hyperparameters.class_weight"


def test_without_validation_data_metrics_use_the_training_data(cancer):
    data = copy.copy(cancer)
    data.X_val = data.y_val = None
    _, results = train(make_spec("sgd", epochs=2), data)
    note = "no validation data: validation metrics are computed on the training data"
    assert note in results[0].logs and note not in results[1].logs
    assert results[1].metrics["validation_loss"] == results[1].metrics["training_loss"]


def test_a_class_missing_from_training_gets_probability_zero(iris):
    data = copy.copy(iris)
    keep = data.y_train != 2
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    run, results = train(make_spec("logistic_regression", epochs=1), data)
    assert any("[2]" in line for line in results[0].logs)
    assert run.class_labels == [0, 1]
    assert results[0].metrics["accuracy"] == pytest.approx(np.mean(data.y_val != 2), abs=0.03)
    assert set(onnx_predict(run.export("onnx"), data.X_val)["probabilities"].shape) == {len(data.X_val), 2}


def test_evaluate_matches_the_epoch_metrics(cancer, diabetes):
    run, results = train(make_spec("logistic_regression", epochs=2, hyperparameters={"max_iter": 5}), cancer)
    evaluated = run.evaluate(cancer.X_val, cancer.y_val)
    expected = {k: v for k, v in results[-1].metrics.items() if k != "training_loss"}
    assert evaluated == pytest.approx(expected)
    run, _ = train(make_spec("linear_regression", "regression"), diabetes)
    assert set(run.evaluate(diabetes.X_val, diabetes.y_val)) == {"validation_loss", "rmse", "mae", "r2"}


def test_predict_gives_the_pipelines_labels_and_probabilities(iris, diabetes):
    data = copy.copy(iris)
    keep = data.y_train != 2  # class 2 only in validation: the model cannot predict it
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    run, _ = train(make_spec("logistic_regression", epochs=1), data)
    predicted = run.predict(data.X_val)
    np.testing.assert_array_equal(predicted.probabilities, run.pipeline().predict_proba(data.X_val))
    np.testing.assert_array_equal(predicted.values, run.pipeline().predict(data.X_val))
    assert predicted.probabilities.shape == (len(data.X_val), len(run.class_labels)) and predicted.scores is None
    run, _ = train(make_spec("ridge", "regression"), diabetes)
    predicted = run.predict(diabetes.X_val)
    np.testing.assert_array_equal(predicted.values, run.pipeline().predict(diabetes.X_val))
    assert predicted.probabilities is None


def test_untrained_runs_cannot_export_or_evaluate(cancer):
    run = adapter.create_run(make_spec("sgd"), cancer)
    with pytest.raises(FailedPrecondition):
        run.export("onnx")
    with pytest.raises(FailedPrecondition):
        run.evaluate(cancer.X_val, cancer.y_val)
    with pytest.raises(FailedPrecondition):
        run.predict(cancer.X_val)


def test_epochs_must_come_in_order(cancer):
    run = adapter.create_run(make_spec("sgd"), cancer)
    with pytest.raises(ValueError, match="next is 1"):
        run.train_epoch(2)


def test_versions():
    v = adapter.versions()
    assert set(v) == {"scikit-learn", "numpy", "skl2onnx", "onnx", "python"}
    assert all(isinstance(x, str) and x[0].isdigit() for x in v.values())


# --- export ---

CLASSIFIERS = [("logistic_regression", {}), ("sgd", {}), ("random_forest", {"n_estimators": 12}),
               ("gradient_boosting", {"n_estimators": 12}), ("svm", {})]
REGRESSORS = [("linear_regression", {}), ("ridge", {}), ("sgd", {}), ("random_forest", {"n_estimators": 12}),
              ("gradient_boosting", {"n_estimators": 12})]


@pytest.mark.parametrize("dataset", ["cancer", "iris"])
@pytest.mark.parametrize("architecture, hyperparameters", CLASSIFIERS, ids=[a for a, _ in CLASSIFIERS])
def test_onnx_probabilities_match_the_pipeline(architecture, hyperparameters, dataset, request):
    data = request.getfixturevalue(dataset)
    run, _ = train(make_spec(architecture, epochs=3, hyperparameters=hyperparameters), data)
    pipeline = run.pipeline()
    onnx_bytes = run.export("onnx")
    out = onnx_predict(onnx_bytes, data.X_val)
    assert set(out) == {"label", "probabilities"}
    assert check_parity(onnx_bytes, pipeline.predict_proba(data.X_val), data.X_val, atol=1e-5) < 1e-5
    np.testing.assert_array_equal(out["label"], pipeline.predict(data.X_val))


@pytest.mark.parametrize("architecture, hyperparameters", REGRESSORS, ids=[a for a, _ in REGRESSORS])
def test_onnx_regression_predictions_match_the_pipeline(architecture, hyperparameters, diabetes):
    run, _ = train(make_spec(architecture, "regression", epochs=3, hyperparameters=hyperparameters), diabetes)
    onnx_bytes = run.export("onnx")
    assert set(onnx_predict(onnx_bytes, diabetes.X_val)) == {"variable"}
    check_parity(onnx_bytes, run.pipeline().predict(diabetes.X_val), diabetes.X_val, atol=0.0, rtol=1e-4)


@pytest.mark.parametrize("architecture, model_type, steps", [
    ("logistic_regression", "classification", ["scaler", "model"]),
    ("gradient_boosting", "classification", ["model"]),
    ("sgd", "regression", ["scaler", "model"]),
])
def test_pickle_round_trip_predicts_identically(architecture, model_type, steps, cancer, diabetes):
    from sklearn.pipeline import Pipeline

    data = cancer if model_type == "classification" else diabetes
    run, _ = train(make_spec(architecture, model_type, epochs=2, hyperparameters=(
        {"n_estimators": 6} if architecture == "gradient_boosting" else {})), data)
    loaded = pickle.loads(run.export("pickle"))
    assert isinstance(loaded, Pipeline) and [name for name, _ in loaded.steps] == steps
    np.testing.assert_array_equal(loaded.predict(data.X_val), run.pipeline().predict(data.X_val))
    if model_type == "classification":
        np.testing.assert_array_equal(loaded.predict_proba(data.X_val), run.pipeline().predict_proba(data.X_val))


def test_export_rejects_formats_sklearn_has_not(cancer):
    run, _ = train(make_spec("sgd", epochs=1), cancer)
    assert run.export_formats == ["onnx", "pickle"]
    for fmt in ("savedmodel", "bogus"):
        with pytest.raises(InvalidArgument) as err:
            run.export(fmt)
        assert err.value.violations[0].field == "format"


# --- checkpoints ---


@pytest.mark.parametrize("architecture, model_type, hyperparameters", [
    ("sgd", "classification", {}),
    ("sgd", "regression", {}),
    ("logistic_regression", "classification", {"max_iter": 3}),
    ("random_forest", "classification", {"n_estimators": 12}),
    ("gradient_boosting", "regression", {"n_estimators": 12, "subsample": 0.6}),
])
def test_resumed_run_equals_an_uninterrupted_one(architecture, model_type, hyperparameters, iris, diabetes):
    data = iris if model_type == "classification" else diabetes
    spec = make_spec(architecture, model_type, epochs=6, hyperparameters=hyperparameters)
    whole, whole_results = train(spec, data)

    first, _ = train(spec, data, until=3)
    state = first.state_bytes()
    resumed = SklearnAdapter().load_run(spec, copy.deepcopy(data), state)
    assert resumed.epoch == 3
    resumed_results = [resumed.train_epoch(epoch) for epoch in range(4, 7)]

    assert resumed_results[-1].metrics == pytest.approx(whole_results[-1].metrics, rel=1e-12, abs=1e-12)
    a, b = whole.pipeline(), resumed.pipeline()
    if hasattr(a["model"], "coef_"):
        np.testing.assert_allclose(b["model"].coef_, a["model"].coef_, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b["model"].intercept_, a["model"].intercept_, rtol=0, atol=1e-12)
    predict = "predict_proba" if model_type == "classification" else "predict"
    np.testing.assert_allclose(getattr(b, predict)(data.X_val), getattr(a, predict)(data.X_val), rtol=0, atol=1e-12)


def test_restore_rejects_another_architectures_checkpoint(cancer):
    run, _ = train(make_spec("sgd", epochs=1), cancer)
    with pytest.raises(FailedPrecondition, match="sgd"):
        adapter.load_run(make_spec("logistic_regression"), cancer, run.state_bytes())


# --- validation ---


def _violation(spec_or_call):
    with pytest.raises(InvalidArgument) as err:
        spec_or_call()
    (violation,) = err.value.violations
    assert err.value.message.startswith(violation.field + ": ")
    return violation


@pytest.mark.parametrize("changes, field, fragment", [
    ({"model_type": ""}, "model_type", "required; sklearn supports: classification, regression"),
    ({"model_type": "forecasting"}, "model_type", "sklearn supports: classification, regression"),
    ({"architecture": ""}, "model_config.architecture", "required"),
    ({"architecture": "mlp"}, "model_config.architecture", "use one of: gradient_boosting, logistic_regression"),
    ({"architecture": "linear_regression"}, "model_config.architecture", "not a classification architecture"),
    ({"hyperparameters": {"max_depthh": 3}}, "model_config.hyperparameters.max_depthh", "valid: C, class_weight"),
    ({"hyperparameters": {"warm_start": False}}, "model_config.hyperparameters.warm_start", "set from the adapter"),
    ({"hyperparameters": {"random_state": 1}}, "model_config.hyperparameters.random_state", "training_config.seed"),
    ({"hyperparameters": {"max_iter": 2.5}}, "model_config.hyperparameters.max_iter", "whole number"),
    ({"hyperparameters": {"fit_intercept": 1}}, "model_config.hyperparameters.fit_intercept", "true or false"),
    ({"hyperparameters": {"solver": "liblinear"}}, "model_config.hyperparameters.solver", "use lbfgs"),
    ({"hyperparameters": {"C": 2.0}, "regularization": {"l2": 1.0}}, "model_config.hyperparameters.C", "only one"),
    ({"hyperparameters": {"solver": "lbfgs"}, "regularization": {"l1": 1.0}},
     "model_config.hyperparameters.solver", "saga"),
    ({"epochs": 0}, "training_config.epochs", "between 1 and 10000"),
    ({"epochs": 10001}, "training_config.epochs", "between 1 and 10000"),
    ({"seed": -1}, "training_config.seed", "between 0"),
    ({"learning_rate": 0.1}, "training_config.learning_rate", "no learning rate"),
    ({"optimizer": "adam"}, "training_config.optimizer", "must be empty"),
    ({"optimizer_config": {"momentum": 0.9}}, "training_config.optimizer_config", "hyperparameters"),
    ({"loss_function": "mse"}, "training_config.loss_function", "cross_entropy or binary_cross_entropy"),
    ({"regularization": {"l2": -1.0}}, "training_config.regularization.l2", "0 or positive"),
    ({"regularization": {"dropout": 0.5}}, "training_config.regularization.dropout",
     "dropout applies to neural networks; sklearn's logistic_regression has none"),
    ({"regularization": {"batch_norm": True}}, "training_config.regularization.batch_norm", "neural networks"),
    ({"regularization": {"weight_decay": 0.01}}, "training_config.regularization.weight_decay", "use l2"),
    ({"mixed_precision": True}, "training_config.mixed_precision", "float64"),
    ({"lr_scheduler": {"type": "cosine"}}, "training_config.lr_scheduler.type", "constant"),
])
def test_logistic_regression_validation_names_the_field(changes, field, fragment):
    spec = make_spec(**{"architecture": "logistic_regression", **changes})
    violation = _violation(lambda: adapter.validate(spec))
    assert violation.field == field
    assert fragment in violation.description


@pytest.mark.parametrize("architecture, model_type, changes, field, fragment", [
    ("sgd", "classification", {"optimizer": "adam"}, "training_config.optimizer", "'sgd' or empty"),
    ("sgd", "classification", {"hyperparameters": {"max_iter": 5}}, "model_config.hyperparameters.max_iter",
     "training_config.epochs"),
    ("sgd", "regression", {"loss_function": "mae"}, "training_config.loss_function", "mse or huber"),
    ("ridge", "regression", {"loss_function": "huber"}, "training_config.loss_function", "mse"),
    ("ridge", "regression", {"regularization": {"l1": 0.1}}, "training_config.regularization.l1", "use sgd"),
    ("linear_regression", "regression", {"regularization": {"l2": 0.1}}, "training_config.regularization.l2",
     "use ridge"),
    ("random_forest", "classification", {"regularization": {"l2": 0.1}}, "training_config.regularization.l2",
     "max_depth"),
    ("random_forest", "regression", {"learning_rate": 0.1}, "training_config.learning_rate", "no learning rate"),
    ("random_forest", "classification", {"hyperparameters": {"n_estimators": 10, "n_estimators_per_epoch": 2}},
     "model_config.hyperparameters.n_estimators_per_epoch", "not both"),
    ("gradient_boosting", "classification", {"hyperparameters": {"learning_rate": 0.1}},
     "model_config.hyperparameters.learning_rate", "training_config.learning_rate"),
    ("svm", "classification", {"hyperparameters": {"probability": True}},
     "model_config.hyperparameters.probability", "always estimates"),
    ("svm", "classification", {"hyperparameters": {"kernel": "precomputed"}},
     "model_config.hyperparameters.kernel", "linear, poly, rbf, sigmoid"),
    ("random_forest", "regression", {"hyperparameters": {"class_weight": "balanced"}},
     "model_config.hyperparameters.class_weight", "valid: bootstrap"),
])
def test_validation_names_the_field(architecture, model_type, changes, field, fragment):
    violation = _violation(lambda: adapter.validate(make_spec(architecture, model_type, **changes)))
    assert violation.field == field
    assert fragment in violation.description


@pytest.mark.parametrize("task, architecture", sorted(_ARCHS))
def test_every_architecture_validates_with_defaults(task, architecture):
    adapter.validate(make_spec(architecture, task))


def test_natural_settings_are_accepted():
    adapter.validate(make_spec("sgd", optimizer="sgd", loss_function="cross_entropy", learning_rate=0.01))
    adapter.validate(make_spec("sgd", "regression", loss_function="huber", regularization={"l1": 0.1}))
    adapter.validate(make_spec("logistic_regression", loss_function="binary_cross_entropy", regularization={"l2": 2}))


@pytest.mark.parametrize("task, architecture", sorted(_ARCHS))
def test_allowed_hyperparameters_exist_on_the_estimator(task, architecture, request):
    # The allow-lists are written out by hand so validate() needs no sklearn; check them here.
    data = request.getfixturevalue({"classification": "cancer", "regression": "diabetes",
                                    "anomaly_detection": "outliers"}[task])
    run = adapter.create_run(make_spec(architecture, task), data)
    model = run._estimator
    params = model.estimator.get_params() if architecture == "svm" else model.get_params()
    assert set(_ARCHS[(task, architecture)].hyperparameters) - {"n_estimators_per_epoch"} <= set(params)


def test_values_the_estimator_rejects_become_invalid_argument(cancer):
    run = adapter.create_run(make_spec("random_forest", hyperparameters={"max_depth": -1}), cancer)
    violation = _violation(lambda: run.train_epoch(1))
    assert violation.field == "model_config.hyperparameters.max_depth"
    run = adapter.create_run(make_spec("logistic_regression", hyperparameters={"C": -1.0}), cancer)
    violation = _violation(lambda: run.train_epoch(1))
    assert violation.field == "model_config.hyperparameters.C"
    assert "sklearn rejected it: The 'C' parameter of LogisticRegression must be" in violation.description


def test_an_l1_ratio_picks_the_saga_solver(cancer):
    run, _ = train(make_spec("logistic_regression", epochs=1, hyperparameters={"l1_ratio": 0.5}), cancer)
    assert run.pipeline()["model"].solver == "saga"
    violation = _violation(lambda: adapter.validate(make_spec(
        "logistic_regression", hyperparameters={"l1_ratio": 0.5, "solver": "lbfgs"})))
    assert violation.field == "model_config.hyperparameters.solver"


def test_data_problems_are_named(cancer, iris):
    violation = _violation(lambda: adapter.create_run(make_spec("sgd", loss_function="binary_cross_entropy"), iris))
    assert violation.field == "training_config.loss_function" and "3" in violation.description
    one_class = copy.copy(cancer)
    keep = cancer.y_train == 1
    one_class.X_train, one_class.y_train = cancer.X_train[keep], cancer.y_train[keep]
    violation = _violation(lambda: adapter.create_run(make_spec("logistic_regression"), one_class))
    assert violation.field == "data_config.label_column"


# --- anomaly detection: isolation_forest ---


def _outlier_data(labels=True, extra_features=0, seed=0):
    """600 points of a 2-D standard gaussian and 30 uniform outliers in [-6, 6]^2 (label 1),
    a stratified 75/25 split; `extra_features` columns of gaussian noise are appended."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0.0, 1.0, size=(600, 2)), rng.uniform(-6.0, 6.0, size=(30, 2))])
    X = np.hstack([X, rng.normal(size=(len(X), extra_features))])
    y = np.r_[np.zeros(600, dtype=np.int64), np.ones(30, dtype=np.int64)]
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    names = [f"x{i}" for i in range(X.shape[1])]
    if not labels:
        return TrainingData("anomaly_detection", names, "", X_train, None, X_val, None)
    return TrainingData("anomaly_detection", names, "is_anomaly", X_train, y_train, X_val, y_val)


@pytest.fixture(scope="module")
def outliers():
    return _outlier_data()


def anomaly_spec(epochs=4, hyperparameters=None, label_column="is_anomaly", **config):
    return make_spec("isolation_forest", "anomaly_detection", epochs=epochs,
                     hyperparameters={"contamination": 0.05} if hyperparameters is None else hyperparameters,
                     data={"label_column": label_column}, **config)


def test_isolation_forest_finds_the_outliers(outliers):
    run, results = train(anomaly_spec(), outliers)
    assert run.total_epochs == 4 and len(results) == 4
    assert [r.extra["n_estimators"] for r in results] == [25, 50, 75, 100]
    assert "100 trees over 4 epochs" in results[0].logs
    assert "label 1 marks known anomalies, 0 normal rows" in results[0].logs
    last = results[-1]
    assert set(last.metrics) == {"training_loss", "validation_loss", "precision", "recall", "f1_score"}
    assert set(last.extra) == {"n_estimators", "anomaly_fraction", "roc_auc"}
    assert last.metrics["f1_score"] > 0.6  # 0.76 on these rows (precision 0.62, recall 1.0)
    assert last.extra["roc_auc"] > 0.9  # 0.996
    assert 0.02 < last.extra["anomaly_fraction"] < 0.1
    # The loss is the mean anomaly score, -score_samples: higher for the outliers than the rest.
    model = run.pipeline()
    assert last.metrics["validation_loss"] == pytest.approx(-model.score_samples(outliers.X_val).mean(), abs=1e-12)
    is_outlier = outliers.y_val == 1
    scores = run.evaluate(outliers.X_val[is_outlier], outliers.y_val[is_outlier])["validation_loss"]
    assert scores > run.evaluate(outliers.X_val[~is_outlier], outliers.y_val[~is_outlier])["validation_loss"] + 0.1
    predicted = model.predict(outliers.X_val) == -1
    assert last.extra["anomaly_fraction"] == pytest.approx(predicted.mean())


def test_isolation_forest_trains_without_labels(outliers):
    data = _outlier_data(labels=False)
    run, results = train(anomaly_spec(epochs=2, label_column=""), data)
    assert set(results[-1].metrics) == {"training_loss", "validation_loss"}
    assert set(results[-1].extra) == {"n_estimators", "anomaly_fraction"}
    assert any("no anomaly labels" in line for line in results[0].logs)
    assert 0.02 < results[-1].extra["anomaly_fraction"] < 0.1
    assert set(run.evaluate(data.X_val, None)) == {"validation_loss", "anomaly_fraction"}
    # Labels the spec does not name are not used.
    _, ignored = train(anomaly_spec(epochs=1, label_column=""), outliers)
    assert "f1_score" not in ignored[0].metrics and "roc_auc" not in ignored[0].extra


def test_without_validation_rows_isolation_forest_measures_the_training_rows(outliers):
    data = copy.copy(outliers)
    data.X_val = data.y_val = None
    _, results = train(anomaly_spec(epochs=1), data)
    assert "no validation data: validation metrics are computed on the training data" in results[0].logs
    assert results[0].metrics["validation_loss"] == results[0].metrics["training_loss"]
    assert results[0].extra["roc_auc"] > 0.9


@pytest.mark.parametrize("normal, anomaly", [(False, True), ("normal", "outlier"), ("0", "1"), (0.0, 1.0)])
def test_the_larger_label_value_marks_anomalies(normal, anomaly, outliers):
    data = copy.copy(outliers)
    relabel = lambda y: np.array([anomaly if v == 1 else normal for v in y], dtype=object)  # noqa: E731
    data.y_train, data.y_val = relabel(outliers.y_train), relabel(outliers.y_val)
    if isinstance(normal, bool):
        data.y_train, data.y_val = data.y_train.astype(bool), data.y_val.astype(bool)
    _, results = train(anomaly_spec(epochs=1), data)
    _, reference = train(anomaly_spec(epochs=1), outliers)
    assert f"label {anomaly!r} marks known anomalies, {normal!r} normal rows" in results[0].logs
    assert results[0].metrics == reference[0].metrics and results[0].extra == reference[0].extra


@pytest.mark.parametrize("change, fragment", [
    (lambda y: np.where(y == 1, 2, y) + (np.arange(len(y)) % 2 == 0) * (y == 0), "3 distinct values (0, 1, 2)"),
    (lambda y: np.zeros_like(y), "single value 0"),
    (lambda y: np.where(y == 1, np.nan, 0.0), "missing values"),
    (lambda y: np.array([str(v) if v else v for v in y], dtype=object), "mixes value types"),
])
def test_anomaly_labels_must_be_two_values(change, fragment, outliers):
    data = copy.copy(outliers)
    data.y_train, data.y_val = change(outliers.y_train), change(outliers.y_val)
    violation = _violation(lambda: adapter.create_run(anomaly_spec(), data))
    assert violation.field == "data_config.label_column"
    assert fragment in violation.description


def test_evaluate_matches_the_isolation_forest_epoch_metrics(outliers):
    run, results = train(anomaly_spec(epochs=2), outliers)
    expected = {k: v for k, v in {**results[-1].metrics, **results[-1].extra}.items()
                if k not in ("training_loss", "n_estimators")}
    assert run.evaluate(outliers.X_val, outliers.y_val) == pytest.approx(expected, abs=1e-12)
    violation = _violation(lambda: run.evaluate(outliers.X_val, np.full(len(outliers.y_val), 5)))
    assert violation.field == "data_config.label_column" and "[5]" in violation.description


@pytest.mark.parametrize("hyperparameters, extra_features", [
    ({"n_estimators": 20, "contamination": 0.05}, 0),
    # Trees on a subset of the features: skl2onnx's converter refuses them unless told otherwise.
    ({"n_estimators": 20, "max_features": 0.5, "bootstrap": True, "max_samples": 128, "contamination": "auto"}, 2),
])
def test_isolation_forest_onnx_scores_match(hyperparameters, extra_features):
    import onnx

    data = _outlier_data(extra_features=extra_features)
    run, _ = train(anomaly_spec(epochs=2, hyperparameters=hyperparameters), data)
    onnx_bytes = run.export("onnx")
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1] == data.X_val.shape[1]
    out = onnx_predict(onnx_bytes, data.X_val)
    assert set(out) == {"label", "scores"}
    assert out["scores"].shape == out["label"].shape == (len(data.X_val), 1)
    model = run.pipeline()
    np.testing.assert_allclose(out["scores"][:, 0], model.decision_function(data.X_val), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(out["label"][:, 0], model.predict(data.X_val))
    assert set(np.unique(out["label"])) == {-1, 1}


def test_a_failed_isolation_forest_onnx_check_is_an_error(outliers):
    run, _ = train(anomaly_spec(epochs=1, hyperparameters={"n_estimators": 5}), outliers)
    model = run.pipeline()["model"]
    real = model.decision_function
    model.decision_function = lambda X: real(X) + 0.01
    with pytest.raises(RuntimeError, match=r"ONNX export check failed: max difference 0.01 > tolerance 0.0001"):
        run.export("onnx")


def test_isolation_forest_pickle_round_trip(outliers):
    from sklearn.pipeline import Pipeline

    run, _ = train(anomaly_spec(epochs=2, hyperparameters={"n_estimators": 10}), outliers)
    loaded = pickle.loads(run.export("pickle"))
    assert isinstance(loaded, Pipeline) and [name for name, _ in loaded.steps] == ["model"]
    np.testing.assert_array_equal(loaded.score_samples(outliers.X_val), run.pipeline().score_samples(outliers.X_val))
    np.testing.assert_array_equal(loaded.predict(outliers.X_val), run.pipeline().predict(outliers.X_val))


def test_isolation_forest_predicts_flags_and_scores_and_keeps_its_labels_in_the_state(outliers):
    spec = anomaly_spec(epochs=2)
    run, _ = train(spec, outliers)
    predicted = run.predict(outliers.X_val)
    model = run.pipeline()
    np.testing.assert_array_equal(predicted.values, (model.predict(outliers.X_val) == -1).astype(int))
    np.testing.assert_array_equal(predicted.scores, -model.score_samples(outliers.X_val))
    assert predicted.probabilities is None and run.anomaly_labels == (0, 1)
    empty = TrainingData("anomaly_detection", outliers.feature_names, "is_anomaly", np.empty((0, 2)), np.empty(0),
                         inference_only=True)
    loaded = adapter.load_run(spec, empty, run.state_bytes())
    assert loaded.anomaly_labels == (0, 1)
    np.testing.assert_array_equal(loaded.predict(outliers.X_val).scores, predicted.scores)
    assert loaded.evaluate(outliers.X_val, outliers.y_val) == run.evaluate(outliers.X_val, outliers.y_val)


@pytest.mark.parametrize("hyperparameters", [
    {"n_estimators": 12, "contamination": 0.05},
    {"n_estimators": 12, "bootstrap": True, "max_samples": 0.5, "max_features": 0.5},
])
def test_resumed_isolation_forest_equals_an_uninterrupted_one(hyperparameters, outliers):
    spec = anomaly_spec(epochs=6, hyperparameters=hyperparameters)
    whole, whole_results = train(spec, outliers)
    first, _ = train(spec, outliers, until=3)
    resumed = SklearnAdapter().load_run(spec, copy.deepcopy(outliers), first.state_bytes())
    assert resumed.epoch == 3
    resumed_results = [resumed.train_epoch(epoch) for epoch in range(4, 7)]
    # Exact: the same trees, so the same scores to the last bit.
    assert resumed_results[-1].metrics == whole_results[-1].metrics
    assert resumed_results[-1].extra == whole_results[-1].extra
    a, b = whole.pipeline(), resumed.pipeline()
    np.testing.assert_array_equal(b.score_samples(outliers.X_val), a.score_samples(outliers.X_val))
    assert b["model"].offset_ == a["model"].offset_


def test_isolation_forest_trees_cap_the_epochs():
    assert adapter.planned_epochs(anomaly_spec(epochs=200, hyperparameters={})) == 100
    assert adapter.planned_epochs(anomaly_spec(epochs=3, hyperparameters={"n_estimators": 2.0})) == 2


HP_ = "model_config.hyperparameters"


@pytest.mark.parametrize("changes, field, fragment", [
    ({"hyperparameters": {"contamination": 0.7}}, f"{HP_}.contamination", "'auto' or the expected share"),
    ({"hyperparameters": {"contamination": 0}}, f"{HP_}.contamination", "(0, 0.5]"),
    ({"hyperparameters": {"contamination": "high"}}, f"{HP_}.contamination", "'auto'"),
    ({"hyperparameters": {"max_samples": "all"}}, f"{HP_}.max_samples", "'auto', a row count"),
    ({"hyperparameters": {"max_features": "sqrt"}}, f"{HP_}.max_features", "feature count or a fraction"),
    ({"hyperparameters": {"bootstrap": "yes"}}, f"{HP_}.bootstrap", "true or false"),
    ({"hyperparameters": {"n_estimators": 0}}, f"{HP_}.n_estimators", "at least 1"),
    ({"hyperparameters": {"n_estimators": 2.5}}, f"{HP_}.n_estimators", "whole number"),
    ({"hyperparameters": {"max_depth": 3}}, f"{HP_}.max_depth",
     "valid: bootstrap, contamination, max_features, max_samples, n_estimators"),
    ({"hyperparameters": {"n_estimators_per_epoch": 3}}, f"{HP_}.n_estimators_per_epoch", "no hyperparameter"),
    ({"hyperparameters": {"warm_start": False}}, f"{HP_}.warm_start", "set from the adapter"),
    ({"hyperparameters": {"random_state": 1}}, f"{HP_}.random_state", "training_config.seed"),
    ({"learning_rate": 0.1}, "training_config.learning_rate", "no learning rate"),
    ({"optimizer": "adam"}, "training_config.optimizer", "must be empty"),
    ({"loss_function": "mse"}, "training_config.loss_function", "minimizes no loss function"),
    ({"regularization": {"l2": 0.1}}, "training_config.regularization.l2", "max_samples and max_features"),
    ({"regularization": {"dropout": 0.5}}, "training_config.regularization.dropout", "neural networks"),
    ({"mixed_precision": True}, "training_config.mixed_precision", "float64"),
    ({"lr_scheduler": {"type": "cosine"}}, "training_config.lr_scheduler.type", "constant"),
    ({"epochs": 0}, "training_config.epochs", "between 1 and 10000"),
])
def test_isolation_forest_validation_names_the_field(changes, field, fragment):
    violation = _violation(lambda: adapter.validate(anomaly_spec(**changes)))
    assert violation.field == field
    assert fragment in violation.description


def test_anomaly_detection_architectures_are_checked():
    violation = _violation(lambda: adapter.validate(make_spec("isolation_forest", "classification")))
    assert violation.field == "model_config.architecture"
    assert "not a classification architecture" in violation.description
    violation = _violation(lambda: adapter.validate(make_spec("random_forest", "anomaly_detection")))
    assert violation.field == "model_config.architecture" and "use one of: isolation_forest" in violation.description
    adapter.validate(anomaly_spec(hyperparameters={"n_estimators": 50, "max_samples": "auto", "contamination": "auto",
                                                   "max_features": 1.0, "bootstrap": False}))
    adapter.validate(anomaly_spec(label_column=""))


def test_isolation_forest_values_sklearn_rejects_name_the_field(outliers):
    run = adapter.create_run(anomaly_spec(hyperparameters={"max_features": 5}), outliers)
    violation = _violation(lambda: run.train_epoch(1))
    assert violation.field == "model_config.hyperparameters.max_features"


def test_anomaly_detection_from_a_parquet_file_without_a_label_column(tmp_path):
    import pandas as pd

    from engine.data.training_data import build_training_data

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200),
                          "site": rng.choice(["north", "south"], size=200)})
    frame.to_parquet(tmp_path / "train.parquet")
    spec = anomaly_spec(epochs=2, label_column="", hyperparameters={"n_estimators": 10})
    data = build_training_data(spec, str(tmp_path / "train.parquet"))
    assert data.y_train is None and data.feature_names == ["a", "b", "site=north", "site=south"]
    _, results = train(spec, data)
    assert set(results[-1].metrics) == {"training_loss", "validation_loss"}


def test_anomaly_label_named_anomaly_wins_over_sort_order():
    import numpy as np

    from engine.frameworks.base import TrainingData
    from engine.frameworks.scikit_learn import SklearnAdapter
    from engine.jobs.spec import DataSpec, TrainingSpec

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.uniform(6, 8, (10, 2))])
    y = np.array(["normal"] * 200 + ["anomaly"] * 10, dtype=object)
    spec = TrainingSpec(framework="sklearn", architecture="isolation_forest", model_type="anomaly_detection",
                        epochs=2, hyperparameters={"contamination": 0.05},
                        data=DataSpec(label_column="is"))
    data = TrainingData(task="anomaly_detection", feature_names=["a", "b"], label_name="is", X_train=X, y_train=y,
                        X_val=X, y_val=y)
    run = SklearnAdapter().create_run(spec, data)
    for epoch in (1, 2):
        result = run.train_epoch(epoch)
    # Reversed polarity would find almost none of the ten "anomaly" rows.
    assert result.metrics["recall"] >= 0.8 and result.metrics["precision"] > 0.4
