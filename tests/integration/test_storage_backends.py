"""Every storage backend the seed names, against a real local endpoint started by the tests:
S3 (moto's server mode), Google Cloud Storage (gcp-storage-emulator) and Azure Blob Storage
(Azurite, through adlfs). Datasets, checkpoints and model artifacts go to the store with their
sha256 recorded; a server whose data dir lost them fetches them back, checked, and carries on;
bytes changed in the store never come back as if they were whole."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass

import pytest

from forge.training import Client, ForgeTrainingError, common_pb2

BUCKET = "forge-store"
PREFIX = "team-a"


@dataclass
class Backend:
    storage: object  # StorageConfig
    fs: object  # an fsspec filesystem on the same store, for the test's own looks

    def path(self, key: str) -> str:
        return f"{BUCKET}/{PREFIX}/{key}"

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.fs.cat_file(self.path(key))).hexdigest()


@pytest.fixture(params=["s3", "gcs", "azure"])
def backend(request, monkeypatch) -> Backend:
    from engine.storage.artifacts import StorageConfig

    if request.param == "s3":
        import s3fs

        endpoint = request.getfixturevalue("s3_endpoint")
        for key, value in (("AWS_ACCESS_KEY_ID", "forge"), ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
                           ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(key, value)
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
        storage = StorageConfig(type="s3", bucket=BUCKET, prefix=PREFIX, region="us-east-1", endpoint_url=endpoint)
    elif request.param == "gcs":
        from gcsfs.core import GCSFileSystem

        endpoint = request.getfixturevalue("gcs_endpoint")
        fs = GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)
        storage = StorageConfig(type="gcs", bucket=BUCKET, prefix=PREFIX, endpoint_url=endpoint, project="forge")
    else:
        import adlfs

        connection = request.getfixturevalue("azurite")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        fs = adlfs.AzureBlobFileSystem(connection_string=connection, skip_instance_cache=True)
        storage = StorageConfig(type="azure", bucket=BUCKET, prefix=PREFIX)
    if fs.exists(BUCKET):  # one bucket per emulator session; each test starts it empty
        fs.rm(f"{BUCKET}/{PREFIX}", recursive=True) if fs.exists(f"{BUCKET}/{PREFIX}") else None
    else:
        fs.mkdir(BUCKET)
    return Backend(storage, fs)


def _request(dataset: str, epochs: int) -> dict:
    return {"modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": 2, "checkpoints": {"enabled": True, "saveLatest": True}},
            "dataConfig": {"trainDataset": dataset, "labelColumn": "target"}}


def test_datasets_checkpoints_and_models_round_trip_through_the_store(backend, start_server, breast_cancer_csv,
                                                                       tmp_path, wait_for_epoch):
    data_dir = tmp_path / "forge-data"
    first = start_server(data_dir, storage=backend.storage, warm_workers=0)
    with Client(first.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-store", label_column="target")
        dataset_key = "datasets/default/bc-store/data.parquet"
        assert backend.sha256(dataset_key) == data.content_sha256  # the store's copy is the dataset, byte for byte

        job = client.start_training(_request(data.name, epochs=3000), training_job_id="store-pause")
        wait_for_epoch(client, job.name, 3)
        paused = client.pause(job.name, wait=True, timeout=60)
        assert paused.state == common_pb2.JOB_STATE_PAUSED
        recorded = first.engine.trainer.get_job(job.name).checkpoint
        assert recorded["uri"].endswith(f"{PREFIX}/checkpoints/default/store-pause/"
                                        f"epoch-{paused.checkpoint_epoch:06d}.ckpt")
        assert backend.sha256(recorded["uri"].split(f"{PREFIX}/", 1)[1]) == recorded["sha256"]

        done = client.wait(client.start_training(_request(data.name, epochs=3)).name, timeout=120)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.error
        exported = client.export_model(done.name, "onnx", tmp_path / "first.onnx")
        artifact_key = f"artifacts/default/{done.name.rsplit('/', 1)[-1]}/model.onnx"
        assert backend.sha256(artifact_key) == exported.sha256
    first.stop()

    # The data dir loses every file (a new machine, a lost disk); the database and the store remain.
    for folder in ("datasets", "checkpoints", "artifacts"):
        shutil.rmtree(data_dir / folder, ignore_errors=True)
    second = start_server(data_dir, storage=backend.storage, warm_workers=0)
    with Client(second.target) as client:
        # The dataset comes back, checked, for the server's own reads and for a worker.
        rows, total = client.get_records(data.name, limit=5)
        assert len(rows) == 5 and total == data.row_count
        shutil.rmtree(data_dir / "datasets")  # and again, so the worker has to fetch it itself
        resumed = client.resume(job.name)
        wait_for_epoch(client, resumed.name, paused.checkpoint_epoch + 2)
        logs = [entry.message for entry in client.get_logs(job.name)]
        assert f"resumed from the checkpoint of epoch {paused.checkpoint_epoch}" in logs
        assert client.cancel(job.name, wait=True, timeout=60).state == common_pb2.JOB_STATE_CANCELLED
        again = client.export_model(done.name, "onnx", tmp_path / "second.onnx")
        assert again.sha256 == exported.sha256
        assert (tmp_path / "second.onnx").read_bytes() == (tmp_path / "first.onnx").read_bytes()

        # Bytes changed in the store, with the local copy gone, are refused rather than used.
        backend.fs.pipe_file(backend.path(dataset_key), b"PAR1 not the dataset PAR1")
        shutil.rmtree(data_dir / "datasets", ignore_errors=True)
        with pytest.raises(ForgeTrainingError) as err:
            client.split_dataset(data.name, [0.5, 0.5], seed=1)
        assert err.value.code.name == "DATA_LOSS"

        # Deleting a job removes its checkpoints and artifacts from the store too.
        client.delete_job(job.name)
        assert not backend.fs.exists(backend.path("checkpoints/default/store-pause"))
        client.delete_dataset(data.name)
        assert not backend.fs.exists(backend.path(dataset_key))


def test_a_store_that_refuses_loses_nothing_and_says_so(start_server, s3_endpoint, breast_cancer_csv, tmp_path,
                                                        monkeypatch):
    """A bucket that does not exist (or refuses): the dataset is not created, the answer says
    where it could not be stored, and the server goes on serving."""
    from engine.storage.artifacts import StorageConfig

    for key, value in (("AWS_ACCESS_KEY_ID", "forge"), ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    storage = StorageConfig(type="s3", bucket="no-such-bucket", region="us-east-1", endpoint_url=s3_endpoint)
    server = start_server(tmp_path / "refused", storage=storage, warm_workers=0)
    with Client(server.target) as client:
        with pytest.raises(ForgeTrainingError) as err:
            client.upload_dataset(breast_cancer_csv, dataset_id="bc-refused", label_column="target")
        assert err.value.code.name == "UNAVAILABLE"
        assert "could not store dataset projects/default/datasets/bc-refused in s3 s3://no-such-bucket" in \
            err.value.message and "nothing was created" in err.value.message
        assert list(client.list_datasets()) == []
        assert not (tmp_path / "refused" / "datasets" / "default" / "bc-refused").exists()
