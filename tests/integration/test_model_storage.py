"""Models leave the service safely: stages, SaveModel/LoadModel with a trust check, exports that
resume from a byte offset, and artifact storage on a local directory or an S3 endpoint."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import grpc
import pytest

from forge.training import Client, ForgeTrainingError, common_pb2, model_pb2
from forge.training.v1 import trainer_service_pb2


def _train(client, dataset: str, model_id: str, seed: int = 1):
    spec = {
        "modelType": "classification",
        "modelId": model_id,
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": 2, "seed": seed},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
    }
    job = client.wait(client.start_training(spec).name, timeout=120)
    assert job.state == common_pb2.JOB_STATE_COMPLETED, job.error
    return job


@pytest.fixture(scope="module")
def cancer(client, breast_cancer_csv):
    return client.upload_dataset(breast_cancer_csv, dataset_id="bc-storage", label_column="target")


def test_stages_keep_one_production_version_per_model(client, cancer):
    first = _train(client, cancer.name, "stage-model", seed=1)
    second = _train(client, cancer.name, "stage-model", seed=2)
    model, archived = client.update_model_stage(first.model_version, "production")
    assert model.stage == model_pb2.MODEL_STAGE_PRODUCTION and archived == []
    model, archived = client.update_model_stage(second.model_version, "staging")
    assert model.stage == model_pb2.MODEL_STAGE_STAGING
    model, archived = client.update_model_stage(second.model_version, "production")
    assert [a.name for a in archived] == [first.model_version]
    assert client.get_model(first.model_version).stage == model_pb2.MODEL_STAGE_ARCHIVED
    production = list(client.list_models(filter="model_id=stage-model AND stage=PRODUCTION"))
    assert [m.name for m in production] == [second.model_version]
    with pytest.raises(ForgeTrainingError) as err:
        client.delete_model(second.model_version)
    assert err.value.code.name == "FAILED_PRECONDITION"
    model, _ = client.update_model_stage(second.model_version, "none")
    assert model.stage == model_pb2.MODEL_STAGE_UNSPECIFIED
    client.delete_model(second.model_version)
    # A model version's proto says what it takes and gives.
    kept = client.get_model(first.model_version)
    assert "mean_radius" in kept.input_features and list(kept.class_labels) == ["0", "1"]
    assert kept.preprocessing["kind"] == "tabular"


def test_save_and_load_model_trust_only_what_the_service_wrote(client, server, cancer, write_matmul_onnx, tmp_path):
    job = _train(client, cancer.name, "saved-model", seed=3)  # bytes no other job wrote
    saved = client.save_model(job.name, "team/cancer.pkl", "pickle")
    assert saved.path == "team/cancer.pkl"
    loaded = client.load_model("team/cancer.pkl", "cancer-prod")
    assert loaded.name == "projects/default/models/cancer-prod/versions/1"
    assert loaded.training_job == job.name and loaded.framework == "sklearn"
    assert loaded.artifact_sha256 == saved.sha256 and loaded.artifact_uri.endswith("models/team/cancer.pkl")
    assert list(loaded.export_formats) == [common_pb2.EXPORT_FORMAT_PICKLE]
    exported = client.export_model(loaded.name, "pickle", tmp_path / "copy.pkl")
    assert exported.sha256 == saved.sha256

    # A pickle from anywhere else runs its author's code when loaded: refused by default.
    models_dir = server.engine.storage.uri("models")
    foreign = pickle.dumps({"not": "a model"})
    with open(f"{models_dir}/team/foreign.pkl", "wb") as f:
        f.write(foreign)
    with pytest.raises(ForgeTrainingError) as err:
        client.load_model("team/foreign.pkl", "foreign")
    assert err.value.code.name == "PERMISSION_DENIED" and hashlib.sha256(foreign).hexdigest() in err.value.message

    # Paths outside the allowed roots are rejected, relative ones may not climb out.
    for path in ("/etc/passwd", str(tmp_path / "copy.pkl")):
        with pytest.raises(ForgeTrainingError) as err:
            client.load_model(path, "escape", "pickle")
        assert err.value.code.name == "PERMISSION_DENIED"
    with pytest.raises(ForgeTrainingError) as err:
        client.load_model("../forge.db", "escape", "pickle")
    assert err.value.field_violations[0].field == "path"
    with pytest.raises(ForgeTrainingError) as err:
        client.load_model("team/missing.onnx", "missing")
    assert err.value.code.name == "NOT_FOUND"
    with pytest.raises(ForgeTrainingError) as err:
        client.load_model("team/cancer.pkl", "wrong-format", "onnx")
    assert err.value.field_violations[0].field == "format"

    # ONNX loads from anywhere under the roots: it runs no code of its author's.
    digest = write_matmul_onnx(Path(models_dir) / "team" / "foreign.onnx", 3)
    onnx_version = client.load_model("team/foreign.onnx", "foreign-onnx")
    assert onnx_version.framework == "onnx" and onnx_version.training_job == ""
    assert onnx_version.artifact_sha256 == digest
    meta = client.export_model(onnx_version.name, "onnx", tmp_path / "foreign.onnx")
    assert [i.name for i in meta.inputs] == ["x"] and list(meta.inputs[0].shape) == [-1, 4]
    assert [o.name for o in meta.outputs] == ["variable"]


def test_untrusted_pickles_load_only_when_the_server_allows_them(start_server, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from engine.models.registry import LoadPolicy

    outside = tmp_path / "incoming"
    outside.mkdir()
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], ["a", "b", "a", "b"])
    (outside / "lr.pkl").write_bytes(pickle.dumps(model))
    running = start_server(load_policy=LoadPolicy(extra_roots=(str(outside),), allow_untrusted_pickles=True))
    with Client(running.target) as client:
        version = client.load_model(str(outside / "lr.pkl"), "outside-lr")
        assert version.framework == "sklearn" and list(version.class_labels) == ["a", "b"]
        assert list(version.input_features) == ["x0", "x1"]
        # A model from a file, with no job behind it, evaluates with its own library.
        rows = tmp_path / "rows.csv"
        rows.write_text("x0,x1,label\n0.1,0.8,a\n0.95,0.05,b\n0.3,0.7,a\n0.6,0.2,b\n")
        labelled = client.upload_dataset(rows, dataset_id="outside-rows", label_column="label")
        report = client.evaluate_model(version.name, labelled.name)
        expected = model.predict([[0.1, 0.8], [0.95, 0.05], [0.3, 0.7], [0.6, 0.2]])
        assert report.row_count == 4 and list(report.class_labels) == ["a", "b"]
        assert report.metrics["accuracy"] == pytest.approx((expected == ["a", "b", "a", "b"]).mean())
        (outside / "junk.pkl").write_bytes(pickle.dumps([1, 2, 3]))
        with pytest.raises(ForgeTrainingError) as err:
            client.load_model(str(outside / "junk.pkl"), "junk")
        assert err.value.field_violations[0].field == "path" and "list" in err.value.message


def test_export_continues_from_a_byte_offset(client, server, write_matmul_onnx, tmp_path):
    models_dir = server.engine.storage.uri("models")
    write_matmul_onnx(Path(models_dir) / "big.onnx", 300_000)  # ~4.6 MiB: five chunks
    data = (Path(models_dir) / "big.onnx").read_bytes()
    version = client.load_model("big.onnx", "big-onnx")

    offset = 1_500_001
    request = trainer_service_pb2.ExportModelRequest(name=version.name, format=common_pb2.EXPORT_FORMAT_ONNX,
                                                     offset=offset)
    messages = list(client.trainer.ExportModel(request))
    assert messages[0].HasField("metadata") and messages[0].metadata.size_bytes == len(data)
    assert messages[0].offset == offset and all(len(m.data) <= 1 << 20 for m in messages)
    assert b"".join(m.data for m in messages) == data[offset:]
    tail = list(client.trainer.ExportModel(trainer_service_pb2.ExportModelRequest(
        name=version.name, format=common_pb2.EXPORT_FORMAT_ONNX, offset=len(data))))
    assert tail[0].HasField("metadata") and b"".join(m.data for m in tail) == b""
    with pytest.raises(grpc.RpcError) as err:
        list(client.trainer.ExportModel(trainer_service_pb2.ExportModelRequest(
            name=version.name, format=common_pb2.EXPORT_FORMAT_ONNX, offset=len(data) + 1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "offset" in err.value.details()

    # The SDK resumes by itself when the connection drops mid-stream.
    original = client.trainer.ExportModel
    flaky = client.trainer.ExportModel = _DropAfterTwoChunks(original)
    try:
        meta = client.export_model(version.name, "onnx", tmp_path / "resumed.onnx")
    finally:
        client.trainer.ExportModel = original
    assert (tmp_path / "resumed.onnx").read_bytes() == data and meta.sha256 == hashlib.sha256(data).hexdigest()
    assert flaky.offsets == [0, 2 << 20]


class _Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection dropped"


class _DropAfterTwoChunks:
    """ExportModel whose first call breaks after two chunks, as a dropped connection would."""

    def __init__(self, method):
        self.method = method
        self.offsets: list[int] = []

    def __call__(self, request, **kwargs):
        self.offsets.append(request.offset)
        call = self.method(request, **kwargs)
        first = len(self.offsets) == 1

        class Call:
            def __iter__(self_inner):
                for i, message in enumerate(call):
                    if first and i == 2:
                        raise _Unavailable()
                    yield message

            def cancel(self_inner):
                call.cancel()

        return Call()


def test_artifacts_live_in_s3_when_configured(start_server, s3_endpoint, breast_cancer_csv, tmp_path, monkeypatch):
    import boto3

    from engine.storage.artifacts import StorageConfig

    for key, value in (("AWS_ACCESS_KEY_ID", "forge"), ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="forge-artifacts")
    storage = StorageConfig(type="s3", bucket="forge-artifacts", prefix="team-a", region="us-east-1",
                            endpoint_url=s3_endpoint)
    running = start_server(storage=storage)
    with Client(running.target) as client:
        ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-s3", label_column="target")
        job = _train(client, ds.name, "s3-model")
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="forge-artifacts")["Contents"]}
        job_id = job.name.rsplit("/", 1)[-1]
        assert {f"team-a/artifacts/default/{job_id}/{f}" for f in ("model.onnx", "model.pkl", "model.state")} <= keys
        assert not (tmp_path / "forge-data" / "artifacts" / "default" / job_id / "model.onnx").exists()

        meta = client.export_model(job.name, "onnx", tmp_path / "from-s3.onnx")
        body = s3.get_object(Bucket="forge-artifacts", Key=f"team-a/artifacts/default/{job_id}/model.onnx")["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == meta.sha256

        saved = client.save_model(job.name, "prod/cancer.pkl")
        loaded = client.load_model("prod/cancer.pkl", "s3-prod")
        assert loaded.artifact_uri == "s3://forge-artifacts/team-a/models/prod/cancer.pkl"
        assert loaded.artifact_sha256 == saved.sha256

        # Bytes changed behind the service's back never leave it whole.
        s3.put_object(Bucket="forge-artifacts", Key=f"team-a/artifacts/default/{job_id}/model.onnx", Body=b"tampered")
        with pytest.raises(ForgeTrainingError) as err:
            client.export_model(job.name, "onnx", tmp_path / "tampered.onnx")
        assert err.value.code.name == "DATA_LOSS"
        assert not (tmp_path / "tampered.onnx").exists()

        client.delete_job(job.name)
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="forge-artifacts").get("Contents", [])}
        assert not any(k.startswith(f"team-a/artifacts/default/{job_id}/") for k in keys)
        assert "team-a/models/prod/cancer.pkl" in keys  # a saved copy outlives its job


def test_local_storage_can_live_outside_the_data_dir(start_server, breast_cancer_csv, tmp_path):
    from engine.storage.artifacts import StorageConfig

    running = start_server(storage=StorageConfig(type="local", base_path=str(tmp_path / "artifact-store")))
    with Client(running.target) as client:
        ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-local-store", label_column="target")
        job = _train(client, ds.name, "local-store")
        job_id = job.name.rsplit("/", 1)[-1]
        stored = tmp_path / "artifact-store" / "artifacts" / "default" / job_id
        assert (stored / "model.onnx").is_file() and (stored / "model.state").is_file()
        assert not (tmp_path / "forge-data" / "artifacts" / "default" / job_id / "model.onnx").exists()
        meta = client.export_model(job.name, "onnx", tmp_path / "out.onnx")
        assert meta.size_bytes == (stored / "model.onnx").stat().st_size


def test_a_foreign_onnx_with_forge_metadata_evaluates_like_its_job(client, server, cancer, tmp_path):
    import onnx

    job = _train(client, cancer.name, "onnx-origin", seed=4)
    client.export_model(job.name, "onnx", tmp_path / "model.onnx")
    model = onnx.load(tmp_path / "model.onnx")
    model.doc_string = "copied into another registry"  # other bytes: LoadModel cannot vouch for them
    target = Path(server.engine.storage.uri("models")) / "copied.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, target)
    foreign = client.load_model("copied.onnx", "copied-onnx")
    assert foreign.training_job == "" and foreign.framework == "sklearn" and list(foreign.class_labels) == ["0", "1"]
    by_file = client.evaluate_model(foreign.name, cancer.name)
    by_job = client.evaluate_model(job.name, cancer.name)
    assert by_file.row_count == by_job.row_count
    assert by_file.metrics["accuracy"] == pytest.approx(by_job.metrics["accuracy"], abs=1 / by_job.row_count)
    # onnxruntime computes in float32, where this SGD model's confident probabilities round to
    # exactly 0 or 1: the ties move ROC AUC a little, nothing else.
    assert by_file.metrics["roc_auc"] == pytest.approx(by_job.metrics["roc_auc"], abs=0.02)
    assert [c.support for c in by_file.per_class] == [c.support for c in by_job.per_class]
