"""TrainingConfig knobs that the worker honours for every framework: early stopping (with
restore-best), checkpoints every N epochs with a self-describing manifest, save_best."""

from __future__ import annotations

import json
import zipfile

import pytest

from forge.training import common_pb2


@pytest.fixture(scope="module")
def bc_parts(client, breast_cancer_csv):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-config", label_column="target")
    return client.split_dataset(ds.name, [0.7, 0.3], seed=5, stratify_column="target")


def test_early_stopping_stops_and_says_why(client, bc_parts):
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {
            "epochs": 300, "seed": 2,
            "earlyStopping": {"enabled": True, "metric": "val_loss", "patience": 2, "restoreBest": True},
        },
        "dataConfig": {"trainDataset": bc_parts[0].name, "validationDataset": bc_parts[1].name,
                       "labelColumn": "target"},
    })
    points = list(client.watch_metrics(job.name))
    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_COMPLETED
    assert len(points) < 300
    assert "early stopping: val_loss did not improve for 3 epochs" in done.state_message
    best = min(points, key=lambda p: p.validation_loss)
    assert points[-1].epoch - best.epoch == 3
    logs = [e.message for e in client.get_logs(job.name)]
    assert f"restored the weights of epoch {best.epoch}, the best by val_loss" in logs


def test_checkpoints_every_n_epochs_keep_last_and_manifest(client, bc_parts, server):
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": 12, "seed": 2,
                           "checkpoints": {"enabled": True, "everyNEpochs": 3, "keepLast": 2, "saveBest": True,
                                           "path": "experiments/sgd"}},
        "dataConfig": {"trainDataset": bc_parts[0].name, "labelColumn": "target"},
    }, training_job_id="ckpt-every-3")
    done = client.wait(job.name, timeout=60)
    assert done.checkpoint_epoch == 12
    directory = server.engine.settings.data_dir / "checkpoints" / "default" / "experiments" / "sgd" / "ckpt-every-3"
    assert sorted(p.name for p in directory.glob("epoch-*.ckpt")) == ["epoch-000009.ckpt", "epoch-000012.ckpt"]
    assert (directory / "best.ckpt").exists()
    with zipfile.ZipFile(directory / "epoch-000012.ckpt") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["framework"] == "sklearn" and manifest["epoch"] == 12
    assert "scikit-learn" in manifest["versions"]
    artifacts = server.engine.settings.data_dir / "artifacts" / "default" / "ckpt-every-3"
    written = json.loads((artifacts / "manifest.json").read_text())
    assert set(written["artifacts"]) == {"state", "onnx", "pickle"}


def test_checkpoint_path_cannot_leave_the_checkpoint_directory(client, bc_parts):
    from forge.training import ForgeTrainingError

    with pytest.raises(ForgeTrainingError) as err:
        client.start_training({
            "modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"checkpoints": {"enabled": True, "path": "../../elsewhere"}},
            "dataConfig": {"trainDataset": bc_parts[0].name, "labelColumn": "target"},
        })
    assert err.value.field_violations[0].field == "training_config.checkpoints.path"
