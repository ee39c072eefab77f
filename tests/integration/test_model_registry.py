"""Every completed job becomes a version of a registered model, exportable on its own."""

from __future__ import annotations

import pytest

from forge.training import ForgeTrainingError, common_pb2


def test_completed_jobs_register_versions_of_their_model(client, breast_cancer_csv, tmp_path):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-registry", label_column="target")
    spec = {
        "modelType": "classification",
        "modelId": "cancer-screen",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": 3, "seed": 1},
        "dataConfig": {"trainDataset": ds.name, "labelColumn": "target"},
    }
    first = client.wait(client.start_training(spec).name, timeout=60)
    second = client.wait(client.start_training(spec).name, timeout=60)
    assert first.model_version == "projects/default/models/cancer-screen/versions/1"
    assert second.model_version == "projects/default/models/cancer-screen/versions/2"

    versions = list(client.list_models(filter="model_id=cancer-screen"))
    assert [m.version for m in versions] == [2, 1]
    model = client.get_model(second.model_version)
    assert model.training_job == second.name and model.framework == "sklearn"
    assert model.model_type == common_pb2.MODEL_TYPE_CLASSIFICATION
    assert "scikit-learn" in model.framework_versions and 0 < model.metrics["accuracy"] <= 1
    assert list(model.datasets) == [ds.name]
    assert set(model.export_formats) == {common_pb2.EXPORT_FORMAT_ONNX, common_pb2.EXPORT_FORMAT_PICKLE}

    by_version = client.export_model(second.model_version, "onnx", tmp_path / "v2.onnx")
    by_job = client.export_model(second.name, "onnx", tmp_path / "job.onnx")
    assert by_version.sha256 == by_job.sha256

    client.delete_model(first.model_version)
    assert [m.version for m in client.list_models(filter="model_id=cancer-screen")] == [2]
    with pytest.raises(ForgeTrainingError) as err:
        client.get_model(first.model_version)
    assert err.value.code.name == "NOT_FOUND"
    with pytest.raises(ForgeTrainingError) as err:
        client.get_model("cancer-screen")
    assert err.value.field_violations[0].field == "name"
