"""Hyperparameter tuning through TrainerService and the SDK: trials are ordinary training jobs."""

from __future__ import annotations

import pytest

from forge.training import ForgeTrainingError, common_pb2

COMPLETED = common_pb2.JOB_STATE_COMPLETED


@pytest.fixture(scope="module")
def cancer(client, breast_cancer_csv):
    data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-tuning", label_column="target")
    return client.split_dataset(data.name, [0.8, 0.2], seed=3, stratify_column="target")


def _base(train, epochs: int = 3, architecture: str = "sgd") -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": architecture},
        "trainingConfig": {"epochs": epochs, "seed": 5},
        "dataConfig": {"trainDataset": train.name, "labelColumn": "target"},
    }


def test_a_grid_search_runs_every_combination_once_and_names_the_best(client, cancer):
    train, _ = cancer
    tuning = client.start_tuning({
        "baseRequest": _base(train),
        "parameters": [
            {"path": "model_config.hyperparameters.alpha", "values": {"values": [0.0001, 0.01, 1.0]}},
            {"path": "model_config.hyperparameters.fit_intercept", "values": {"values": [True, False]}},
        ],
        "algorithm": "grid",
        "objectiveMetric": "accuracy",
        "parallelTrials": 2,
    }, tuning_job_id="grid-search")
    assert tuning.spec.max_trials == 6 and tuning.spec.goal == 1  # accuracy: maximize
    events = list(client.watch_tuning(tuning.name))  # follows until the search ends
    done = client.get_tuning_job(tuning.name)
    assert done.state == COMPLETED and len(done.trials) == 6
    combos = {(t.parameters["model_config.hyperparameters.alpha"], t.parameters["model_config.hyperparameters.fit_intercept"])
              for t in done.trials}
    assert len(combos) == 6
    finished = [t for t in done.trials if t.state == COMPLETED]
    assert finished and all(t.HasField("objective_value") and t.model_version for t in finished)
    best = max(finished, key=lambda t: t.objective_value)
    assert done.best_trial.objective_value == best.objective_value and done.best_trial_id == done.best_trial.id
    # Each trial is an ordinary job, labelled with its search.
    job = client.get_job(best.training_job)
    assert job.state == COMPLETED and dict(job.spec.labels)["tuning_job"] == "grid-search"
    assert job.latest_metrics.accuracy == pytest.approx(best.objective_value)
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("trial_started") == 6 and "new_best" in kinds
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    # Resume a watch from the middle: only what came after.
    tail = list(client.watch_tuning(tuning.name, from_sequence=events[-3].sequence))
    assert [e.sequence for e in tail] == [e.sequence for e in events[-2:]]


@pytest.mark.parametrize("pruner, number", [("", 2), ("successive_halving", 3)])
def test_bayesian_search_prunes_bad_trials_from_their_epochs(client, cancer, pruner, number):
    train, _ = cancer
    epochs = 300  # long enough for the controller to see trials mid-run
    tuning = client.start_tuning({
        "baseRequest": _base(train, epochs=epochs),
        "parameters": [{"path": "model_config.hyperparameters.alpha",
                        "doubleRange": {"min": 1e-5, "max": 10.0, "logScale": True}}],
        "algorithm": "bayesian",
        "objectiveMetric": "val_loss",
        "maxTrials": 6,
        "parallelTrials": 2,
        "earlyStopTrials": True,
        "seed": 11,
        **({"pruner": pruner} if pruner else {}),
    })
    done = client.wait_tuning(tuning.name, timeout=300)
    assert done.state == COMPLETED and done.spec.pruner == number  # median by default
    values = [t.parameters["model_config.hyperparameters.alpha"] for t in done.trials]
    assert len(values) == 6 and len(set(values)) == 6 and all(1e-5 <= v <= 10 for v in values)
    completed = [t for t in done.trials if t.state == COMPLETED]
    assert done.best_trial.objective_value == min(t.objective_value for t in completed)  # val_loss: minimize
    pruned = [t for t in done.trials if t.state_message.startswith("pruned")]
    assert pruned, [(t.parameters, t.state_message) for t in done.trials]
    for trial in pruned:  # a pruned trial stopped before its last epoch, and says why
        assert trial.state == common_pb2.JOB_STATE_CANCELLED and trial.epochs_trained < epochs
        assert "val_loss" in trial.state_message


def test_cancel_and_bad_specs(client, cancer):
    train, _ = cancer
    tuning = client.start_tuning({
        "baseRequest": _base(train, epochs=2000),
        "parameters": [{"path": "model_config.hyperparameters.alpha", "values": {"values": [0.001, 0.1]}}],
        "objectiveMetric": "accuracy",
    })
    cancelled = client.cancel_tuning(tuning.name)
    assert cancelled.state in (common_pb2.JOB_STATE_CANCELLING, common_pb2.JOB_STATE_CANCELLED)
    done = client.wait_tuning(tuning.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_CANCELLED
    assert all(client.get_job(t.training_job).state in (common_pb2.JOB_STATE_CANCELLED, COMPLETED)
               for t in done.trials)

    bad = [
        ({"parameters": []}, "spec.parameters"),
        ({"parameters": [{"path": "model_config.hyperparameters.alpha",
                          "doubleRange": {"min": 1.0, "max": 0.1}}]}, "spec.parameters[0].double_range"),
        ({"parameters": [{"path": "model_config.hyperparameters.alpha", "doubleRange": {"min": 0.1, "max": 1}}],
          "algorithm": "grid"}, "spec.parameters[model_config.hyperparameters.alpha]"),
        ({"objectiveMetric": ""}, "spec.objective_metric"),
        ({"parameters": [{"path": "model_config.hyperparameters.no_such_knob", "values": {"values": [1]}}]},
         "spec.base_request.model_config.hyperparameters"),
    ]
    for change, field in bad:
        spec = {"baseRequest": _base(train), "objectiveMetric": "accuracy",
                "parameters": [{"path": "model_config.hyperparameters.alpha", "values": {"values": [0.1]}}],
                **change}
        with pytest.raises(ForgeTrainingError) as err:
            client.start_tuning(spec)
        assert err.value.code.name == "INVALID_ARGUMENT", change
        assert err.value.field_violations[0].field.startswith(field), (change, err.value.field_violations)


def test_a_tuning_job_carries_on_after_a_server_restart(start_server, breast_cancer_csv, tmp_path):
    from forge.training import Client

    data_dir = tmp_path / "restart-data"
    first = start_server(data_dir)
    with Client(first.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-restart", label_column="target")
        tuning = client.start_tuning({
            "baseRequest": {**_base(data, epochs=400), "trainingConfig": {"epochs": 400, "seed": 5,
                                                                           "checkpoints": {"enabled": True}}},
            "parameters": [{"path": "model_config.hyperparameters.alpha",
                            "values": {"values": [0.0001, 0.001, 0.01, 0.1]}}],
            "objectiveMetric": "accuracy",
            "parallelTrials": 1,
        }, tuning_job_id="survives-restart")
        for event in client.watch_tuning(tuning.name):
            if event.kind == "trial_started" and event.trial.id == "1":
                break  # the second trial is under way
    first.stop()

    second = start_server(data_dir)
    with Client(second.target) as client:
        done = client.wait_tuning(tuning.name, timeout=300)
        assert done.state == COMPLETED, done.state_message
        values = sorted(t.parameters["model_config.hyperparameters.alpha"] for t in done.trials)
        assert values == [0.0001, 0.001, 0.01, 0.1]  # every value once, none twice
        assert all(t.state == COMPLETED for t in done.trials)
        interrupted = client.get_job(done.trials[1].training_job)
        assert interrupted.attempt_count >= 2  # paused by the shutdown, resumed by the search
        events = list(client.watch_tuning(tuning.name, follow=False))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def test_a_time_budget_ends_the_search(client, cancer):
    train, _ = cancer
    tuning = client.start_tuning({
        "baseRequest": _base(train, epochs=10_000),  # trials that would run for minutes
        "parameters": [{"path": "model_config.hyperparameters.alpha",
                        "doubleRange": {"min": 1e-5, "max": 1.0, "logScale": True}}],
        "algorithm": "hyperband",
        "objectiveMetric": "accuracy",
        "maxTrials": 50,
        "parallelTrials": 2,
        "timeBudget": "4s",
    })
    assert tuning.spec.pruner == 4  # hyperband's own pruner
    done = client.wait_tuning(tuning.name, timeout=120)
    assert done.state == COMPLETED and "time budget of 4 s reached" in done.state_message
    assert 0 < len(done.trials) < 50
    assert all(t.state != common_pb2.JOB_STATE_RUNNING for t in done.trials)
    assert all(client.get_job(t.training_job).state in (common_pb2.JOB_STATE_CANCELLED, COMPLETED)
               for t in done.trials)
