"""resources.memory is enforced: a worker that grows past it is stopped and its job fails
saying so (and is not retried); a job within its limit, next to it, is unaffected."""

from __future__ import annotations

import re

import grpc
import pytest

from forge.training import Client, ForgeTrainingError, common_pb2

# An MLP with an 8192 x 8192 layer: 256 MiB of float32 weights, as much again for their
# gradients and twice that for Adam's moments, on top of a PyTorch worker's ~380 MiB.
_HUGE_MLP = {"hidden_units": [8192, 8192]}


def _spec(dataset: str, framework: str, architecture: str, epochs: int, memory: str = "", **training) -> dict:
    return {"modelType": "classification",
            "modelConfig": {"framework": framework, "architecture": architecture,
                            **({"hyperparameters": _HUGE_MLP} if framework == "pytorch" else {})},
            "trainingConfig": {"epochs": epochs, "seed": 5, **training},
            "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
            "resources": {"memory": memory} if memory else {}}


def _peak_mib(message: str) -> int:
    found = re.search(r"peak (\d+) MiB", message)
    assert found, message
    return int(found.group(1))


@pytest.fixture(scope="module")
def bc(client, breast_cancer_csv):
    return client.upload_dataset(breast_cancer_csv, dataset_id="bc-memory-limit", label_column="target")


def test_a_job_past_its_memory_limit_fails_saying_so_and_a_job_beside_it_completes(client, bc):
    greedy = client.start_training(_spec(bc.name, "pytorch", "mlp", 50, "512Mi", retryPolicy={"maxRetries": 1}),
                                   training_job_id="greedy")
    modest = client.start_training(_spec(bc.name, "sklearn", "sgd", 300, "1Gi"), training_job_id="modest")

    failed = client.wait(greedy.name, timeout=120)
    assert failed.state == common_pb2.JOB_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert failed.error.message.startswith("the job exceeded its memory limit of 512Mi (resources.memory): peak ")
    assert failed.error.message.endswith(" MiB; raise resources.memory or use less data")
    assert _peak_mib(failed.error.message) > 512
    assert failed.attempt_count == 1  # stopped for its limit: not a death a retry could help
    assert f"failed: {failed.error.message}" in [e.message for e in client.stream_logs(greedy.name, follow=False)]

    done = client.wait(modest.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED and done.current_epoch == 300


def test_the_servers_default_memory_limit_applies_to_jobs_that_set_none(start_server, tmp_path, breast_cancer_csv):
    server = start_server(tmp_path / "default-limit", default_job_memory_bytes=512 * 2**20)
    with Client(server.target) as c:
        data = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        greedy = c.start_training(_spec(data.name, "pytorch", "mlp", 50))
        # A job's own resources.memory wins over the default, upwards too.
        roomy = c.start_training(_spec(data.name, "sklearn", "sgd", 100, "2Gi"))
        failed = c.wait(greedy.name, timeout=120)
        assert failed.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert failed.error.message.startswith("the job exceeded its memory limit of 512 MiB (the server's default; "
                                               "set resources.memory to change it): peak ")
        assert _peak_mib(failed.error.message) > 512
        assert c.wait(roomy.name, timeout=120).state == common_pb2.JOB_STATE_COMPLETED


@pytest.mark.parametrize(("memory", "says"), [
    ("512", "is 512 bytes, less than a worker needs to start (at least 32Mi): did you mean '512Mi'?"),
    ("2 gigs", "is not a memory quantity: write e.g. '512Mi' or '2Gi'"),
])
def test_a_bad_memory_limit_is_refused_naming_the_field(client, bc, memory, says):
    with pytest.raises(ForgeTrainingError) as refused:
        client.start_training(_spec(bc.name, "sklearn", "sgd", 5, memory))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    violation = refused.value.field_violations[0]
    assert violation.field == "resources.memory"
    assert violation.description == f"{memory!r} {says}"
