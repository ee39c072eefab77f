"""Who may do what: API keys, roles per project, and projects that cannot see each other,
through a real server started with --auth api-key and the SDK."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import sqlalchemy
from google.protobuf import json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.apikeys import ApiKeys
from forge.training import Client, ForgeTrainingError, common_pb2, model_pb2
from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2
from server.auth import METHOD_ROLES

SERVICES = {s.full_name: s for s in (trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"],
                                     data_service_pb2.DESCRIPTOR.services_by_name["DataService"],
                                     pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"])}


def _spec(dataset: str, epochs: int = 2) -> dict:
    return {"modelType": "MODEL_TYPE_CLASSIFICATION", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": 3},
            "dataConfig": {"trainDataset": dataset, "labelColumn": "target"}}


@pytest.fixture(scope="module")
def secured(module_server):
    return module_server(auth="api-key")


@pytest.fixture(scope="module")
def keys(secured):
    made = {}
    store = ApiKeys(secured.engine.db)
    for name, roles in {"alice": {"a": "admin"}, "bob": {"b": "admin"}, "viewer": {"b": "viewer"},
                        "mixed": {"a": "admin", "b": "viewer"}}.items():
        made[name] = store.create(name, roles)[1]
    return made


@pytest.fixture(scope="module")
def project_b(secured, keys, breast_cancer_csv, tmp_path_factory):
    """One resource of every kind in project b, made with bob's key."""
    with Client(secured.target, api_key=keys["bob"]) as bob:
        ds = bob.upload_dataset(breast_cancer_csv, dataset_id="bds", label_column="target")
        db = tmp_path_factory.mktemp("src") / "crm.db"
        with sqlite3.connect(db) as conn:
            conn.execute("create table t (x integer)")
            conn.execute("insert into t values (1)")
        src = bob.data.RegisterDataSource(data_service_pb2.RegisterDataSourceRequest(
            data_source_id="bsrc", data_source={"type": "DATA_SOURCE_TYPE_SQL", "uri": f"sqlite:///{db}",
                                                "query": "select * from t"}),
            metadata=()).data_source
        dp = bob.create_data_pipeline(ds.name, {"normalization": {"method": "standard"}}, data_pipeline_id="bdp")
        job = bob.wait(bob.start_training(_spec(ds.name), training_job_id="bjob").name, timeout=120)
        assert job.state == common_pb2.JOB_STATE_COMPLETED
        model = next(iter(bob.list_models()))
        pipe = bob.create_pipeline({"stages": [{"id": "check", "type": "data_validation",
                                                "parameters": {"dataset": ds.name, "rules": {"min_rows": 1}}}]},
                                   pipeline_id="bpipe")
        execution = bob.execute_pipeline(pipe.name)
        bob.wait_execution(execution.name, timeout=60)
        tpl = bob.create_template({"stages": [{"id": "check", "type": "data_validation",
                                               "parameters": {"dataset": "${params.dataset}",
                                                              "rules": {"min_rows": 1}}}],
                                   "parameters": [{"name": "dataset", "type": "string", "required": True}]},
                                  template_id="btpl")
        tune = bob.start_tuning({"baseRequest": _spec(ds.name, 1), "algorithm": "grid", "objectiveMetric": "accuracy",
                                 "parameters": [{"path": "model_config.hyperparameters.alpha",
                                                 "values": {"values": [0.01]}}]}, tuning_job_id="btune")
        list(bob.watch_tuning(tune.name))
    assert all(n.startswith("projects/b/") for n in (ds.name, src.name, dp.name, job.name, model.name, pipe.name,
                                                    execution.name, tpl.name, tune.name))
    return {"ds": ds.name, "src": src.name, "dp": dp.name, "job": job.name, "model": model.name,
            "pipe": pipe.name, "exec": execution.name, "tpl": tpl.name, "tune": tune.name}


def _requests(b: dict) -> dict[str, list[dict]]:
    """Every RPC, asked by a key of project a about project b's resources (directly, or by
    naming them inside a request for its own project)."""
    sha = hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    return {
        "CreateDataset": [{"parent": "projects/b", "datasetId": "x", "config": {"sourceUri": "x.csv"}},
                          {"datasetId": "x", "config": {"dataSource": b["src"], "query": "select 1"}}],
        "UploadDataset": [{"metadata": {"parent": "projects/b", "datasetId": "x", "format": "DATA_FORMAT_CSV",
                                        "sizeBytes": 8, "sha256": sha}}],
        "GetDataset": [{"name": b["ds"]}],
        "ListDatasets": [{"parent": "projects/b"}],
        "DeleteDataset": [{"name": b["ds"]}],
        "RegisterDataSource": [{"parent": "projects/b", "dataSourceId": "x",
                                "dataSource": {"type": "DATA_SOURCE_TYPE_SQL", "uri": "sqlite:///x.db"}}],
        "GetDataSource": [{"name": b["src"]}],
        "ListDataSources": [{"parent": "projects/b"}],
        "GetRecords": [{"name": b["ds"], "limit": 5}],
        "StreamRecords": [{"name": b["ds"], "batchSize": 10}],
        "TransformDataset": [{"name": b["ds"], "processing": {"normalization": {"method": "standard"}},
                              "datasetId": "x"}],
        "FilterDataset": [{"name": b["ds"], "expression": "target == 1", "datasetId": "x"}],
        "SplitDataset": [{"name": b["ds"], "ratios": [0.5, 0.5]}],
        "MergeDatasets": [{"parent": "projects/b", "datasets": [b["ds"], b["ds"]], "datasetId": "x"},
                          {"datasets": [b["ds"], b["ds"]], "datasetId": "x"}],
        "ValidateDataset": [{"name": b["ds"], "rules": {"minRows": 1}}],
        "CreateDataPipeline": [{"dataPipelineId": "x", "dataPipeline": {
            "fitDataset": b["ds"], "processing": {"normalization": {"method": "standard"}}}}],
        "RunDataPipeline": [{"name": b["dp"], "dataset": b["ds"]}],
        "CreatePipeline": [{"parent": "projects/b", "pipelineId": "x", "pipeline": {"stages": [
            {"id": "v", "type": "STAGE_TYPE_DATA_VALIDATION", "parameters": {"dataset": "d", "rules": {"min_rows": 1}}}]}}],
        "GetPipeline": [{"name": b["pipe"]}],
        "ListPipelines": [{"parent": "projects/b"}],
        "DeletePipeline": [{"name": b["pipe"]}],
        "ExecutePipeline": [{"name": b["pipe"]}],
        "GetExecution": [{"name": b["exec"]}],
        "ListExecutions": [{"parent": b["pipe"]}, {"parent": "projects/b"}, {"parent": "bpipe"}],
        "WatchExecution": [{"name": b["exec"]}],
        "CancelExecution": [{"name": b["exec"]}],
        "CreateTemplate": [{"parent": "projects/b", "templateId": "x", "template": {"stages": [
            {"id": "v", "type": "STAGE_TYPE_DATA_VALIDATION", "parameters": {"dataset": "d", "rules": {"min_rows": 1}}}]}}],
        "GetTemplate": [{"name": b["tpl"]}],
        "ListTemplates": [{"parent": "projects/b"}],
        "CreateFromTemplate": [{"template": b["tpl"], "pipelineId": "x", "config": {"dataset": b["ds"]}}],
        "StartTraining": [{"parent": "projects/b", "spec": _spec("bds")}, {"spec": _spec(b["ds"])}],
        "GetTrainingJob": [{"name": b["job"]}],
        "ListTrainingJobs": [{"parent": "projects/b"}],
        "DeleteTrainingJob": [{"name": b["job"]}],
        "PauseTraining": [{"name": b["job"]}],
        "ResumeTraining": [{"name": b["job"]}],
        "CancelTraining": [{"name": b["job"]}],
        "GetTrainingMetrics": [{"name": b["job"]}],
        "WatchTrainingMetrics": [{"name": b["job"]}],
        "GetTrainingLogs": [{"name": b["job"]}],
        "StreamTrainingLogs": [{"name": b["job"]}],
        "ExportTrainingMetrics": [{"name": b["job"], "format": "METRICS_EXPORT_FORMAT_CSV"}],
        "ListAlertDeliveries": [{"resource": b["job"]}, {"resource": b["pipe"]}, {"resource": b["exec"]},
                                {"resource": b["tune"]}],
        "SaveModel": [{"name": b["job"], "path": "stolen.onnx", "format": "EXPORT_FORMAT_ONNX"}],
        "LoadModel": [{"parent": "projects/b", "path": "stolen.onnx", "modelId": "x"}],
        "ExportModel": [{"name": b["job"], "format": "EXPORT_FORMAT_ONNX"},
                        {"name": b["model"], "format": "EXPORT_FORMAT_ONNX"}],
        "ListModels": [{"parent": "projects/b"}],
        "GetModel": [{"name": b["model"]}],
        "DeleteModel": [{"name": b["model"]}],
        "UpdateModelStage": [{"name": b["model"], "stage": "MODEL_STAGE_PRODUCTION"}],
        "EvaluateModel": [{"name": b["job"], "dataset": b["ds"]}, {"name": b["model"], "dataset": b["ds"]}],
        "StartTuning": [{"parent": "projects/b", "spec": {"baseRequest": _spec("bds", 1), "algorithm": "SEARCH_ALGORITHM_GRID", "objectiveMetric": "accuracy",
                                                          "parameters": [{"path": "model_config.hyperparameters.alpha",
                                                                          "values": {"values": [0.1]}}]}},
                        {"spec": {"baseRequest": _spec(b["ds"], 1), "algorithm": "SEARCH_ALGORITHM_GRID", "objectiveMetric": "accuracy",
                                  "parameters": [{"path": "model_config.hyperparameters.alpha", "values": {"values": [0.1]}}]}}],
        "GetTuningJob": [{"name": b["tune"]}],
        "ListTuningJobs": [{"parent": "projects/b"}],
        "WatchTuningJob": [{"name": b["tune"]}],
        "CancelTuning": [{"name": b["tune"]}],
    }


def _invoke(channel: grpc.Channel, path: str, body: dict, metadata) -> grpc.StatusCode:
    """Call the RPC at `path` with `body` (the request's JSON form); the status it ends with."""
    service, method_name = path.strip("/").split("/")
    method = SERVICES[service].methods_by_name[method_name]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    request = json_format.ParseDict(body, request_cls())
    kwargs = dict(request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString)
    try:
        if method.client_streaming:
            chunk = request_cls(chunk=b"x,y\n1,2\n")
            channel.stream_unary(path, **kwargs)(iter([request, chunk]), timeout=30, metadata=metadata)
        elif method.server_streaming:
            for _ in channel.unary_stream(path, **kwargs)(request, timeout=30, metadata=metadata):
                pass
        else:
            channel.unary_unary(path, **kwargs)(request, timeout=30, metadata=metadata)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _bearer(key: str) -> tuple:
    return (("authorization", f"Bearer {key}"),)


def test_a_key_of_project_a_finds_nothing_of_project_b_in_any_rpc(secured, keys, project_b):
    requests = _requests(project_b)
    assert {f"/{s}/{m}" for s in SERVICES for m in (x.name for x in SERVICES[s].methods)} == set(METHOD_ROLES)
    assert set(requests) == {p.rsplit("/", 1)[1] for p in METHOD_ROLES}, "every RPC must be tried"
    leaks = []
    with grpc.insecure_channel(secured.target) as channel:
        for path in sorted(METHOD_ROLES):
            for variant, body in enumerate(requests[path.rsplit("/", 1)[1]]):
                code = _invoke(channel, path, body, _bearer(keys["alice"]))
                if code != grpc.StatusCode.NOT_FOUND:
                    leaks.append(f"{path.rsplit('/', 1)[1]}[{variant}]: {code.name}")
    assert not leaks, leaks
    # Nothing alice tried changed project b: bob still sees everything as it was.
    with Client(secured.target, api_key=keys["bob"]) as bob:
        assert bob.get_dataset(project_b["ds"]).row_count > 0
        assert bob.get_job(project_b["job"]).state == common_pb2.JOB_STATE_COMPLETED
        assert bob.get_model(project_b["model"]).stage != model_pb2.MODEL_STAGE_PRODUCTION
        assert bob.get_pipeline(project_b["pipe"]).name == project_b["pipe"]
        assert [d.name for d in bob.list_datasets()] == [project_b["ds"]]
    # Alice's own lists hold nothing of b's.
    with Client(secured.target, api_key=keys["alice"]) as alice:
        assert list(alice.list_datasets()) == [] and list(alice.list_jobs()) == []
        assert list(alice.list_models()) == [] and list(alice.list_pipelines()) == []


def test_the_owner_reads_what_others_cannot(secured, keys, project_b):
    """The same read requests by bob succeed: the NOT_FOUND above is the scope, not the request."""
    reads = {p: bodies for p, bodies in _requests(project_b).items() if METHOD_ROLES[_path(p)] == "viewer"}
    with grpc.insecure_channel(secured.target) as channel:
        for name, bodies in reads.items():
            code = _invoke(channel, _path(name), bodies[0], _bearer(keys["bob"]))
            assert code == grpc.StatusCode.OK, (name, code)


def _path(method: str) -> str:
    return next(p for p in METHOD_ROLES if p.endswith("/" + method))


def test_roles_decide_what_a_key_may_do(secured, keys, project_b):
    with Client(secured.target, api_key=keys["viewer"]) as viewer:
        assert viewer.get_dataset("bds").name == project_b["ds"]  # a single-project key's bare ids mean b
        with pytest.raises(ForgeTrainingError) as err:
            viewer.start_training(_spec("bds"))
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "trainer" in str(err.value) and "b=viewer" in str(err.value)
    with Client(secured.target, api_key=keys["mixed"], project="a") as mixed:
        # Admin in a, viewer in b: deleting in b is refused as a permission, not hidden.
        with pytest.raises(ForgeTrainingError) as err:
            mixed.delete_dataset(project_b["ds"])
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and "project b" in str(err.value)
        assert mixed.get_dataset(project_b["ds"]).name == project_b["ds"]
        assert list(mixed.list_datasets()) == []  # its default project is a


def test_creating_in_the_callers_project_needs_the_role_there(secured, keys, project_b, breast_cancer_csv):
    # Creating calls name no parent: the project comes from x-forge-project (or the key's only
    # project), and is checked exactly like a named one.
    with Client(secured.target, api_key=keys["mixed"], project="b") as mixed:  # viewer in b
        for create in (lambda: mixed.upload_dataset(breast_cancer_csv, dataset_id="sneaky", label_column="target"),
                       lambda: mixed.start_training(_spec("bds"), training_job_id="sneaky")):
            with pytest.raises(ForgeTrainingError) as err:
                create()
            assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and "project b" in str(err.value)
    with Client(secured.target, api_key=keys["alice"], project="zzz") as stranger:  # a project it has no role in
        with pytest.raises(ForgeTrainingError) as err:
            stranger.upload_dataset(breast_cancer_csv, dataset_id="sneaky", label_column="target")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ForgeTrainingError) as err:
            list(stranger.list_datasets())
        assert err.value.code == grpc.StatusCode.NOT_FOUND
    with Client(secured.target, api_key=keys["mixed"]) as unsure:  # two projects, none named
        with pytest.raises(ForgeTrainingError) as err:
            list(unsure.list_datasets())
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "x-forge-project" in str(err.value) and "(a, b)" in str(err.value)
    with Client(secured.target, api_key=keys["bob"]) as bob:
        assert "sneaky" not in {d.name.rsplit("/", 1)[-1] for d in bob.list_datasets()}
        with pytest.raises(ForgeTrainingError) as err:
            bob.get_job("sneaky")
        assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_calls_without_a_valid_key_are_refused_but_health_answers(secured, keys):
    with grpc.insecure_channel(secured.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    with Client(secured.target, api_key="") as anonymous:
        with pytest.raises(ForgeTrainingError) as err:
            list(anonymous.list_datasets())
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in str(err.value)
    forged = keys["bob"][:-4] + "AAAA"
    with Client(secured.target, api_key=forged) as forger:
        with pytest.raises(ForgeTrainingError) as err:
            list(forger.list_datasets())
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and forged not in str(err.value)
    with Client(secured.target, api_key=keys["bob"], project="Not A Project") as bad:
        with pytest.raises(ForgeTrainingError) as err:
            list(bad.list_datasets())
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "x-forge-project" in str(err.value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, timeout=60)


def test_keys_are_made_listed_and_revoked_with_the_admin_command(secured, database_flags):
    data_dir = str(secured.config.data_dir)
    store = ["--data-dir", data_dir, *database_flags(data_dir)]  # the server's own database
    made = _cli("keys", *store, "create", "--name", "ci", "--role", "c=trainer")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ftk_") and "only time" in made.stderr
    key_id = key.split("_")[1]
    listed = _cli("keys", *store, "list", "--output", "json")
    assert key_id in listed.stdout and key not in listed.stdout  # the secret is never shown again
    stored = Path(data_dir, "forge.db").read_bytes() if Path(data_dir, "forge.db").exists() else b""
    assert key.encode() not in stored
    with secured.engine.db.engine.connect() as conn:  # whichever database the server uses
        rows = conn.execute(sqlalchemy.text("SELECT * FROM api_keys")).all()
    secret = key[len("ftk_") + 13:]  # ftk_<12-hex id>_<secret>
    assert rows and not any(secret in str(value) for row in rows for value in row)
    with Client(secured.target, api_key=key) as ci:
        assert list(ci.list_datasets()) == []
        revoked = _cli("keys", *store, "revoke", key_id)
        assert revoked.returncode == 0 and key_id in revoked.stdout
        deadline = time.monotonic() + 15  # a server trusts a checked key for a few seconds
        while True:
            try:
                list(ci.list_datasets())
            except ForgeTrainingError as err:
                assert err.code == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "a revoked key kept working"
            time.sleep(0.5)
    bad = _cli("keys", *store, "create", "--name", "x", "--role", "c=owner")
    assert bad.returncode == 2 and "viewer, trainer, admin" in bad.stderr


def test_one_key_holds_a_bounded_number_of_streams(start_server, breast_cancer_csv):
    running = start_server(auth="api-key", max_streams_per_key=2)
    store = ApiKeys(running.engine.db)
    greedy, other = store.create("greedy", {"a": "trainer"})[1], store.create("other", {"a": "trainer"})[1]
    release = threading.Event()
    with Client(running.target, api_key=greedy) as client, Client(running.target, api_key=other) as second:
        def held_upload():
            yield data_service_pb2.UploadDatasetRequest(metadata={"dataset_id": "held", "format": 1,
                                                                  "size_bytes": 1, "sha256": "0" * 64})
            release.wait(30)

        uploads = [client.data.UploadDataset.future(held_upload()) for _ in range(2)]
        time.sleep(1.0)  # both uploads are open on the server
        with pytest.raises(ForgeTrainingError) as err:
            list(client.stream_logs("projects/a/trainingJobs/none", follow=False))
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-streams-per-key 2" in str(err.value)
        with pytest.raises(ForgeTrainingError) as other_err:  # another key is not affected by it
            list(second.stream_logs("projects/a/trainingJobs/none", follow=False))
        assert other_err.value.code == grpc.StatusCode.NOT_FOUND
        release.set()
        for upload in uploads:
            with pytest.raises(grpc.RpcError):
                upload.result(timeout=30)  # one byte promised, none sent: refused, and the slot freed
        with pytest.raises(ForgeTrainingError) as freed:
            list(client.stream_logs("projects/a/trainingJobs/none", follow=False))
        assert freed.value.code == grpc.StatusCode.NOT_FOUND


def test_a_model_file_saved_by_another_project_can_be_neither_loaded_nor_replaced(secured, keys, project_b,
                                                                                   breast_cancer_csv):
    with Client(secured.target, api_key=keys["bob"]) as bob:
        saved = bob.save_model(project_b["job"], "shared/b-model.onnx", "onnx")
        assert bob.load_model(saved.path, "reloaded").name.startswith("projects/b/models/reloaded/")
    with Client(secured.target, api_key=keys["alice"]) as alice:
        with pytest.raises(ForgeTrainingError) as err:
            alice.load_model("shared/b-model.onnx", "stolen")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        assert not any(m.name.endswith("/stolen") for m in alice.list_models())
        ds = alice.upload_dataset(breast_cancer_csv, dataset_id="ads", label_column="target")
        spec = _spec(ds.name)
        spec["trainingConfig"]["seed"] = 4  # a model of its own, not bob's bytes again
        job = alice.wait(alice.start_training(spec, training_job_id="ajob").name, timeout=120)
        with pytest.raises(ForgeTrainingError) as err:
            alice.save_model(job.name, "shared/b-model.onnx", "onnx")
        assert err.value.code == grpc.StatusCode.ALREADY_EXISTS and "choose another path" in str(err.value)
        alice.save_model(job.name, "shared/a-model.onnx", "onnx")
        alice.save_model(job.name, "shared/a-model.onnx", "onnx")  # its own file: replaced
    with Client(secured.target, api_key=keys["bob"]) as bob:
        assert bob.load_model("shared/b-model.onnx", "reloaded").version == 2  # still bob's bytes
