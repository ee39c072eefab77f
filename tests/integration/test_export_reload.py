"""For every framework and export format: export through the SDK, reload in a fresh process
with the framework's own loader, and get the service's own predictions back within the
tolerance TOLERANCE states for the format. The reloading process imports no engine or server
code: the "torch" format's program (a torch.export of the network, stored beside the state
dict and config) runs with torch alone, as engine/export/formats.py documents.

"The service's own predictions" are what engine/jobs/evaluate.py computes: the job's
model.state loaded with its adapter's load_run on an inference-only TrainingData, rows turned
into X with arrays_from_prep, run.predict(X). Each framework trains one classifier (on the
breast-cancer label) and one regressor (on mean_area, with the other columns as features),
and one fresh interpreter per framework reloads every format of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from forge.training import common_pb2

HELD_OUT_ROWS = 50
REGRESSION_LABEL = "mean_area"  # 143..2501: big enough that a purely absolute tolerance would be meaningless

# How close a reloaded export must come to the service's predictions, by format:
# (atol on class probabilities, rtol on regression values). A regression value passes when
# |got - want| <= rtol * max(|want|, 1).
TOLERANCE = {
    # The very object the service predicts with (a sklearn Pipeline; an XGBClassifier /
    # XGBRegressor around the same booster), run by the same library in float64 / XGBoost's
    # float32: differences are float rounding of 1 - p and of the probability rescaling.
    "pickle": (1e-6, 1e-6),
    # The same booster; XGBoost sums leaves in float32 either way.
    "xgboost_json": (1e-6, 1e-6),
    # The same network and float32 weights, as a torch.export program; the service takes the
    # sigmoid / softmax of the logits in float64, the program in float32.
    "torch": (1e-6, 1e-6),
    # The serving function traces the same Keras model in float32; only the last cast and
    # 1 - p differ from the service's float64 arithmetic.
    "savedmodel": (1e-6, 1e-6),
    # A float32 graph (converted trees / tf2onnx / torch.onnx) behind the raw-column front
    # graph: float32 rounding of inputs, weights and sums. The adapters check their own
    # exports with the same bounds (1e-4 absolute on probabilities, 1e-4 relative on values).
    # (Observed on CPU: at most ~1e-7 for the native formats and ~4e-7 for ONNX.)
    "onnx": (1e-4, 1e-4),
}

_MLP = {"hidden_units": [16]}
# framework: {task: (architecture, hyperparameters, training config)}
CASES = {
    "sklearn": {
        "classification": ("logistic_regression", {}, {"epochs": 5}),
        "regression": ("random_forest", {"n_estimators": 20, "max_depth": 6}, {"epochs": 2}),
    },
    "xgboost": {
        "classification": ("classifier", {}, {"epochs": 15}),
        "regression": ("regressor", {}, {"epochs": 15}),
    },
    "pytorch": {
        # binary_cross_entropy: one logit, its sigmoid the probability of the second class.
        "classification": ("mlp", _MLP, {"epochs": 5, "batchSize": 32, "learningRate": 0.01,
                                         "lossFunction": "binary_cross_entropy"}),
        "regression": ("mlp", _MLP, {"epochs": 5, "batchSize": 32, "learningRate": 0.01}),
    },
    "tensorflow": {
        # The default loss: a softmax over both classes.
        "classification": ("mlp", _MLP, {"epochs": 5, "batchSize": 32, "learningRate": 0.01}),
        "regression": ("mlp", _MLP, {"epochs": 5, "batchSize": 32, "learningRate": 0.01}),
    },
}
FORMATS = {
    "sklearn": ["onnx", "pickle"],
    "xgboost": ["onnx", "pickle", "xgboost_json"],
    "pytorch": ["onnx", "torch"],
    "tensorflow": ["onnx", "savedmodel"],
}
LABELS = {"classification": "target", "regression": REGRESSION_LABEL}

# Run in a fresh interpreter: argv[1] is a JSON list of cases {format, task, path, X, rows,
# out}; each case's predictions go to out + ".npy" (probabilities [n, classes] or values [n])
# and its labels / class names to out + ".json". Prints the engine and server modules it
# ended up importing.
RELOAD = textwrap.dedent(r'''
    import json
    import sys

    import numpy as np


    def two_columns(p):
        """A binary classifier's probability of the second class as [1 - p, p]."""
        p = np.asarray(p, dtype=np.float64)
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


    def reload_pickle(case, X, rows):
        import pickle

        with open(case["path"], "rb") as f:
            model = pickle.load(f)  # a sklearn Pipeline, or an xgboost XGBClassifier / XGBRegressor
        if case["task"] == "classification":
            # sklearn predicts class labels; XGBClassifier class indices (XGBoost's sklearn API).
            return model.predict_proba(X), [str(v) for v in model.predict(X).tolist()], None
        return model.predict(X), None, None


    def reload_xgboost_json(case, X, rows):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(case["path"])
        out = booster.predict(xgb.DMatrix(X))
        # binary:logistic gives P(second class), multi:softprob one column per class.
        return (two_columns(out) if case["task"] == "classification" else out), None, None


    def reload_torch(case, X, rows):
        import io

        import torch

        saved = torch.load(case["path"], map_location="cpu", weights_only=True)
        # The program: the network with its output wrapped as the ONNX export wraps it (class
        # probabilities, or values [n, 1]); torch.export.load rebuilds it without engine code.
        module = torch.export.load(io.BytesIO(saved["program"])).module()
        with torch.no_grad():
            out = module(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
        if case["task"] != "classification":
            return out[:, 0], None, None
        return out, None, list(saved["config"]["classes"])


    def reload_savedmodel(case, X, rows):
        import tarfile
        import tempfile

        import tensorflow as tf

        directory = tempfile.mkdtemp(dir=case["scratch"])
        with tarfile.open(case["path"]) as tar:
            tar.extractall(directory, filter="data")
        loaded = tf.saved_model.load(directory)
        serve = loaded.signatures["serve"]
        out = {k: v.numpy() for k, v in serve(input=tf.constant(X, tf.float32)).items()}
        if case["task"] == "classification":
            labels = [v.decode() if isinstance(v, bytes) else str(v) for v in out["label"].tolist()]
            return out["probabilities"], labels, None
        return out["variable"][:, 0], None, None


    def reload_onnx(case, X, rows):
        from forge.training.inference import Model

        model = Model.from_file(case["path"])
        assert model.raw_columns, "the ONNX export should take the raw feature columns"
        if case["task"] == "classification":
            return model.predict_proba(rows, as_array=True), [str(v) for v in model.predict(rows)], model.classes
        return np.asarray(model.predict(rows), dtype=np.float64), None, None


    for case in json.loads(open(sys.argv[1]).read()):
        X = np.load(case["X"])
        with open(case["rows"]) as f:
            rows = json.load(f)
        out, labels, classes = globals()["reload_" + case["format"]](case, X, rows)
        np.save(case["out"] + ".npy", np.asarray(out, dtype=np.float64))
        with open(case["out"] + ".json", "w") as f:
            json.dump({"labels": labels, "classes": None if classes is None else [str(c) for c in classes]}, f)
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "server"))))
''')


@pytest.fixture(scope="module")
def held_out(client, server, breast_cancer_csv):
    """([train, validation, test] dataset names, the first HELD_OUT_ROWS test rows as the
    service stores them). The SDK client works in project "default"."""
    from engine import names

    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-reload", label_column="target")
    parts = client.split_dataset(ds.name, [0.7, 0.15, 0.15], seed=5, stratify_column="target")
    stored = server.engine.data.get(names.resolve(parts[2].name, "datasets", "dataset", "default"), field="dataset")
    frame = pd.read_parquet(stored.path).head(HELD_OUT_ROWS).reset_index(drop=True)
    assert len(frame) == HELD_OUT_ROWS
    return [p.name for p in parts], frame


@pytest.fixture(scope="module")
def jobs(client, held_out, cancel_unfinished):
    """Every job of CASES, started at once so that they train while earlier tests reload."""
    (train, validation, test), _ = held_out
    started = {}
    for framework, tasks in CASES.items():
        for task, (architecture, hyperparameters, training) in tasks.items():
            job = client.start_training({
                "modelType": task,
                "modelConfig": {"framework": framework, "architecture": architecture,
                                "hyperparameters": hyperparameters},
                "trainingConfig": {"seed": 7, **training},
                "dataConfig": {"trainDataset": train, "validationDataset": validation, "testDataset": test,
                               "labelColumn": LABELS[task]},
            }, training_job_id=f"reload-{framework}-{task}")
            started[framework, task] = job.name
    yield started
    cancel_unfinished(started.values())


def _max_difference(task: str, got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference in the units TOLERANCE states for the task (absolute for
    probabilities, relative to max(|want|, 1) for regression values)."""
    if task == "classification":
        return float(np.max(np.abs(got - want)))
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))


@pytest.mark.parametrize("framework", list(CASES))
def test_every_export_reloads_to_the_services_predictions(client, service_prediction, held_out, jobs, framework,
                                                          tmp_path):
    _, frame = held_out
    cases, references = [], {}
    for task, label in LABELS.items():
        name = jobs[framework, task]
        done = client.wait(name, timeout=180)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        offered = sorted(common_pb2.ExportFormat.Name(f).removeprefix("EXPORT_FORMAT_").lower()
                         for f in done.export_formats)
        assert offered == sorted(FORMATS[framework])

        scratch = tmp_path / task
        scratch.mkdir()
        X, prediction, class_labels, _ = service_prediction(name, frame, scratch)
        assert X.shape[0] == HELD_OUT_ROWS
        # Predictions that vary from row to row, or agreeing with them would prove little.
        if task == "classification":
            assert len(set(prediction.values.tolist())) == 2 and np.ptp(prediction.probabilities[:, 1]) > 0.5
        else:
            assert np.std(prediction.values) > 0.1 * np.std(frame[label])
        np.save(scratch / "X.npy", X)
        # Raw rows as a user has them: every column but the label (JSON keeps every float exactly).
        (scratch / "rows.json").write_text(json.dumps(frame.drop(columns=[label]).to_dict("records")))
        references[task] = (prediction, class_labels)
        for fmt in offered:
            meta = client.export_model(name, fmt, scratch)  # a directory: the server's file name
            path = scratch / meta.filename
            assert path.is_file() and path.stat().st_size == meta.size_bytes
            cases.append({"format": fmt, "task": task, "path": str(path), "X": str(scratch / "X.npy"),
                          "rows": str(scratch / "rows.json"), "out": str(scratch / f"reloaded-{fmt}"),
                          "scratch": str(scratch)})

    (tmp_path / "cases.json").write_text(json.dumps(cases))
    # cwd outside the repository, so nothing is imported from it by accident (the venv's
    # editable installs would still resolve `engine`; the reloads import none of it).
    result = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "cases.json")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert imported == [], f"reloading {framework} exports imported {imported}"

    report = []
    failures = []
    for case in cases:
        fmt, task = case["format"], case["task"]
        prediction, class_labels = references[task]
        got = np.load(case["out"] + ".npy")
        extra = json.loads((tmp_path / task / f"reloaded-{fmt}.json").read_text())
        atol, rtol = TOLERANCE[fmt]
        if task == "classification":
            want, tolerance = prediction.probabilities, atol
        else:
            want, tolerance = prediction.values, rtol
        assert got.shape == want.shape, f"{fmt} {task}: shape {got.shape}, the service's {want.shape}"
        worst = _max_difference(task, got, want)
        report.append(f"{framework} {task} {fmt}: max difference {worst:.3g} (tolerance {tolerance:g})")
        if not worst <= tolerance:
            failures.append(report[-1])
        if extra["classes"] is not None:
            assert extra["classes"] == [str(c) for c in class_labels], f"{fmt}: class order"
        if extra["labels"] is not None:
            names = [str(c) for c in class_labels]
            if fmt == "pickle" and framework == "xgboost":  # XGBClassifier.predict gives class indices
                extra["labels"] = [names[int(i)] for i in extra["labels"]]
            # Labels must agree wherever the top two probabilities are further apart than the tolerance.
            top2 = np.sort(want, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 2 * tolerance
            want_labels = np.asarray([str(v) for v in prediction.values.tolist()])
            assert (np.asarray(extra["labels"])[clear] == want_labels[clear]).all(), f"{fmt} {task}: labels"
    print("\n".join(report))
    assert not failures, "\n".join(failures)
