"""Every framework the seed names trains for real through the same RPCs, and exports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from forge.training import common_pb2
from forge.training.inference import Model

REPO = Path(__file__).resolve().parents[2]

CASES = {
    # framework: (architecture, extra training config, export formats)
    "xgboost": ("classifier", {"epochs": 15}, {"onnx", "pickle", "xgboost_json"}),
    "pytorch": ("mlp", {"epochs": 12, "batchSize": 32, "learningRate": 0.01,
                        "lrScheduler": {"type": "step", "stepSize": 5, "gamma": 0.5}}, {"onnx", "torch"}),
    "tensorflow": ("mlp", {"epochs": 12, "batchSize": 32, "learningRate": 0.01}, {"onnx", "savedmodel"}),
}


@pytest.fixture(scope="module")
def parts(client, breast_cancer_csv):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-frameworks", label_column="target")
    return client.split_dataset(ds.name, [0.7, 0.15, 0.15], seed=11, stratify_column="target")


@pytest.mark.parametrize("framework", list(CASES))
def test_framework_trains_reports_and_exports_onnx(client, parts, framework, tmp_path):
    architecture, training, formats = CASES[framework]
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": framework, "architecture": architecture,
                        "hyperparameters": {"hidden_units": [16]} if architecture == "mlp" else {}},
        "trainingConfig": {"seed": 3, **training},
        "dataConfig": {"trainDataset": parts[0].name, "validationDataset": parts[1].name,
                       "testDataset": parts[2].name, "labelColumn": "target"},
    })
    points = list(client.watch_metrics(job.name))
    done = client.wait(job.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert [p.epoch for p in points] == list(range(1, training["epochs"] + 1))
    assert points[-1].validation_loss < points[0].validation_loss
    assert all(p.HasField("learning_rate") for p in points)
    if architecture == "mlp":
        assert all(p.HasField("gradient_norm") and np.isfinite(p.gradient_norm) for p in points)
    if framework == "pytorch":  # the step schedule halves the rate after epoch 5
        assert points[5].learning_rate == pytest.approx(points[0].learning_rate / 2)
    assert done.test_metrics["accuracy"] > 0.9
    names = {common_pb2.ExportFormat.Name(f).removeprefix("EXPORT_FORMAT_").lower() for f in done.export_formats}
    assert names == formats

    meta = client.export_model(job.name, "onnx", tmp_path / "model.onnx")
    rows, _ = client.get_records(parts[2].name, limit=1000)
    frame = pd.DataFrame(rows)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    stamped = session.get_modelmeta().custom_metadata_map
    assert stamped["forge.framework"] == framework and framework.replace("pytorch", "torch") in stamped["forge.versions"]
    # Raw rows in, the standardization the network learned behind is part of the graph.
    model = Model.from_file(tmp_path / "model.onnx")
    assert model.raw_columns and model.features == list(meta.input_features)
    predicted = np.asarray(model.predict(frame.drop(columns=["target"]))).astype(int)
    assert (predicted == frame["target"].to_numpy()).mean() == pytest.approx(done.test_metrics["accuracy"], abs=0.02)


def test_the_server_validates_every_framework_without_importing_it(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from engine.app import Engine, EngineSettings
        from engine.jobs.spec import TrainingSpec, DataSpec
        import pandas as pd
        engine = Engine(EngineSettings(data_dir=Path({str(tmp_path / "data")!r}), max_concurrent_jobs=1))
        engine.start()
        pd.DataFrame({{"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]}}).to_csv({str(tmp_path / 'd.csv')!r}, index=False)
        engine.data.create_dataset("default", "d", {{"source_uri": {str(tmp_path / 'd.csv')!r}, "label_column": "y"}})
        for framework, arch in [("xgboost", "classifier"), ("pytorch", "mlp"), ("tensorflow", "mlp")]:
            spec = TrainingSpec(framework=framework, architecture=arch, model_type="classification", epochs=2,
                                data=DataSpec(train_dataset="d", label_column="y"))
            engine.trainer.start_training("default", "", spec)
        engine.shutdown(0)
        print(",".join(m for m in ("torch", "tensorflow", "xgboost", "keras") if m in sys.modules) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "none"


@pytest.mark.parametrize(("framework", "architecture"), [("pytorch", "mlp"), ("xgboost", "classifier")])
def test_a_paused_and_resumed_run_ends_exactly_like_an_uninterrupted_one(client, parts, framework, architecture):
    def spec():
        return {
            "modelType": "classification",
            "modelConfig": {"framework": framework, "architecture": architecture,
                            "hyperparameters": {"hidden_units": [16]} if architecture == "mlp" else {}},
            "trainingConfig": {"epochs": 150, "seed": 9, "batchSize": 32, "learningRate": 0.01,
                               "regularization": {"dropout": 0.2} if architecture == "mlp" else {}},
            "dataConfig": {"trainDataset": parts[0].name, "validationDataset": parts[1].name,
                           "labelColumn": "target"},
        }

    straight = client.start_training(spec())
    interrupted = client.start_training(spec())
    for _ in client.watch_metrics(interrupted.name):
        break
    paused = client.pause(interrupted.name, wait=True, timeout=60)
    assert paused.state == common_pb2.JOB_STATE_PAUSED
    assert 0 < paused.checkpoint_epoch < 150
    client.resume(interrupted.name)
    a, b = client.wait(straight.name, timeout=120), client.wait(interrupted.name, timeout=120)
    assert a.state == b.state == common_pb2.JOB_STATE_COMPLETED
    assert b.attempt_count == 2
    # Same seed, same data: resuming from the checkpoint changes nothing (exact on CPU).
    assert b.latest_metrics.validation_loss == a.latest_metrics.validation_loss
    assert b.latest_metrics.accuracy == a.latest_metrics.accuracy
