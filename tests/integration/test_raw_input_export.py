"""Text and recommendation models export ONNX graphs that take the RAW columns (the text, the
user and item ids; engine/export/raw_input.py) and predict what the service predicts.

Tiny jobs train through the SDK: a pytorch and a tensorflow text_classifier, a pytorch
matrix_factorization. Each ONNX export is loaded with forge.training.inference.Model, fed raw
row dicts (unknown words and ids, missing values, capitals, non-ASCII letters, texts longer
than max_length, texts without a word), and compared with the service's own predictions:
the job's model.state loaded by engine.jobs.evaluate.load_stored_run, rows turned into X
with arrays_from_prep, run.predict(X), as engine/jobs/evaluate.py does.

A tabular sklearn classifier behind a data pipeline with TF-IDF text features and date parts
of a timestamp column: its export is fed to onnxruntime directly (timestamps as int64
nanoseconds, engine/export/raw_input.py "Timestamps"), since forge.training.inference has no
conversion of timestamps yet.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from forge.training import common_pb2

TOLERANCE = 1e-4  # absolute on probabilities, relative to max(|value|, 1) on ratings

WORDS = {
    "billing": ["refund", "invoice", "charged", "payment", "Rechnung", "café", "Überweisung"],
    "technical": ["crash", "error", "login", "password", "ошибка", "Fehler", "écran"],
    "shipping": ["parcel", "tracking", "delivered", "late", "посылка", "Lieferung", "retard"],
}
FILLER = ["hello", "please", "help", "thanks", "my", "the", "urgent", "again", "bitte", "merci"]


def _tickets(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        team = str(rng.choice(list(WORDS)))
        words = [*rng.choice(FILLER, 2), *rng.choice(WORDS[team], 2), *rng.choice(FILLER, 1)]
        rows.append((" ".join(words) + rng.choice([".", "!", "?", ""]), team))
    return pd.DataFrame(rows, columns=["text", "team"])


# Rows to predict: training-like texts, then the hard cases. (Capitals only in the spellings
# the graph knows for non-ASCII letters: see raw_input's docstring, "Text".)
HARD_TEXTS = [
    "", None, "   ", "!!! ??? ...", "unknown words only zzz", "REFUND my PAYMENT, please!!!",
    "crash_error login_password", "Parcel42 tracking-number 42", "ÜBERWEISUNG Überweisung überweisung",
    "ОШИБКА Ошибка ошибка", "CAFÉ Café café ÉCRAN Écran", "東京 中文 😀 emoji",
    "refund " * 30, "late parcel late parcel late parcel late parcel late parcel", "bitte\tmerci\nhello",
]


def _ratings(users: int, items: int, per_user: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    taste, trait = rng.normal(0, 1, (users, 2)), rng.normal(0, 1, (items, 2))
    rows = []
    for u in range(users):
        for i in rng.choice(items, per_user, replace=False):
            rating = float(np.clip(3 + taste[u] @ trait[i] + rng.normal(0, 0.3), 1, 5))
            rows.append((f"user-{u}" if u % 5 else f"Usér {u}", f"item-{i}", rating))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


HARD_IDS = [("user-1", "item-2"), ("Usér 5", "item-3"), ("usér 5", "item-3"), ("USER-1", "item-2"),
            ("nobody", "item-1"), ("user-2", "no-such-item"), (None, "item-4"), ("user-3", None), ("", "")]


def _upload(client, frame: pd.DataFrame, dataset_id: str, label: str):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return client.upload_dataset(buffer.getvalue(), format="parquet", dataset_id=dataset_id, label_column=label)


TEXT_MODEL = {"embedding_dim": 8, "max_length": 8, "vocab_size": 40}
TEXT_TRAINING = {"epochs": 3, "batchSize": 32, "learningRate": 0.02, "seed": 3}
# name: (framework, architecture, model type, hyperparameters, data config keys)
CASES = {
    "pytorch-text": ("pytorch", "text_classifier", "classification", TEXT_MODEL, TEXT_TRAINING),
    "tensorflow-text": ("tensorflow", "text_classifier", "classification", TEXT_MODEL, TEXT_TRAINING),
    "pytorch-ratings": ("pytorch", "matrix_factorization", "recommendation", {"embedding_dim": 4},
                        {"epochs": 3, "batchSize": 64, "learningRate": 0.02, "seed": 3}),
}


@pytest.fixture(scope="module")
def jobs(client, cancel_unfinished):
    """The jobs of CASES, started at once; their names by case."""
    tickets = _upload(client, _tickets(150, 0), "rawin-tickets", "team")
    ratings = _upload(client, _ratings(30, 20, 8, 1), "rawin-ratings", "rating")
    started = {}
    for case, (framework, architecture, task, hyperparameters, training) in CASES.items():
        if task == "classification":
            data = {"trainDataset": tickets.name, "textColumn": "text", "labelColumn": "team"}
        else:
            data = {"trainDataset": ratings.name, "userColumn": "user_id", "itemColumn": "item_id",
                    "labelColumn": "rating"}
        job = client.start_training({
            "modelType": task,
            "modelConfig": {"framework": framework, "architecture": architecture, "hyperparameters": hyperparameters},
            "trainingConfig": training, "dataConfig": data,
        }, training_job_id=f"rawin-{case}")
        started[case] = job.name
    yield started
    cancel_unfinished(started.values())


def _export(client, job_name: str, scratch):
    from forge.training.inference import Model

    meta = client.export_model(job_name, "onnx", scratch)
    assert meta.raw_columns
    return Model.from_file(scratch / meta.filename)


@pytest.mark.parametrize("case", ["pytorch-text", "tensorflow-text"])
def test_text_classifier_onnx_takes_raw_text(client, service_prediction, jobs, case, tmp_path):
    done = client.wait(jobs[case], timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    frame = pd.concat([_tickets(25, 9), pd.DataFrame({"text": HARD_TEXTS, "team": "billing"})], ignore_index=True)
    frame["text"] = frame["text"].astype("str")  # None stays missing
    _, prediction, classes, prep = service_prediction(jobs[case], frame, tmp_path)
    assert prep["kind"] == "text" and len(prep["vocabulary"]) > 10
    assert any(not token.isascii() for token in prep["vocabulary"])  # non-ASCII words reach the vocabulary

    model = _export(client, jobs[case], tmp_path)
    assert model.raw_columns and model.features == ["text"]
    assert [(i.name, i.dtype, list(i.shape)) for i in model.inputs] == [("text", "string", [None, 1])]
    assert model.classes == [str(c) for c in classes]
    rows = frame.to_dict("records")  # each row: {"text": ..., "team": ...}; the label is ignored
    got = model.predict_proba(rows, as_array=True)
    want = prediction.probabilities
    assert got.shape == want.shape == (len(frame), 3)
    assert float(np.max(np.abs(got - want))) <= TOLERANCE
    assert np.ptp(want, axis=0).max() > 1e-3  # predictions that vary from row to row
    # The texts without a word are all padding, and predict alike.
    blank = [i for i, t in enumerate(frame["text"]) if not isinstance(t, str) or not any(c.isalnum() for c in t)]
    assert len(blank) == 4 and np.ptp(got[blank], axis=0).max() <= TOLERANCE


def test_matrix_factorization_onnx_takes_raw_ids(client, service_prediction, jobs, tmp_path):
    done = client.wait(jobs["pytorch-ratings"], timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    known = _ratings(30, 20, 8, 1).sample(25, random_state=2)
    frame = pd.concat([known, pd.DataFrame(HARD_IDS, columns=["user_id", "item_id"]).assign(rating=3.0)],
                      ignore_index=True)
    for column in ("user_id", "item_id"):
        frame[column] = frame[column].astype("str")
    _, prediction, _, prep = service_prediction(jobs["pytorch-ratings"], frame, tmp_path)
    assert prep["kind"] == "interactions" and "Usér 5" in prep["user_index"]

    model = _export(client, jobs["pytorch-ratings"], tmp_path)
    assert model.raw_columns and model.task == "recommendation"
    assert [(i.name, i.dtype) for i in model.inputs] == [("user_id", "string"), ("item_id", "string")]
    got = np.asarray(model.predict(frame.to_dict("records")), dtype=np.float64)
    want = np.asarray(prediction.values, dtype=np.float64).reshape(-1)
    assert got.shape == want.shape == (len(frame),)
    assert float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0))) <= TOLERANCE
    assert np.std(want[: len(known)]) > 1e-3


def _tickets_with_times(n: int, seed: int) -> pd.DataFrame:
    """Tickets with a timestamp (1950 to 2150, some missing) and an amount (some missing)."""
    rng = np.random.default_rng(seed)
    frame = _tickets(n, seed)
    low, high = pd.Timestamp("1950-01-01").value, pd.Timestamp("2150-01-01").value
    when = pd.Series(pd.to_datetime(rng.integers(low, high, n), unit="ns"))
    when[3::10] = pd.NaT
    amount = rng.gamma(2.0, 30.0, n)
    amount[5::12] = np.nan
    return frame.assign(when=when, amount=amount)


# Timestamps to predict: before 1970 and after 2100, leap days, the ends of the nanosecond range.
HARD_TIMES = ["1677-09-21T00:12:43.145224193", "1900-02-28T23:59:59", "1900-03-01T00:00:00", "1969-12-31T23:59:59",
              "1970-01-01T00:00:00", "2000-02-29T12:00:00", "2024-02-29T23:30:00", "2100-03-01T01:00:00",
              "2262-04-11T23:47:16.854775807", None]


def _nanos(series: pd.Series) -> np.ndarray:
    """What a loader sends for a timestamp column: int64 nanoseconds since the epoch of the
    wall-clock time, the int64 minimum (pandas' NaT) for a missing value."""
    if series.dt.tz is not None:
        series = series.dt.tz_localize(None)
    return series.astype("datetime64[ns]").to_numpy().view(np.int64)


def test_tabular_onnx_behind_tfidf_and_date_parts_takes_raw_text_and_timestamps(client, server, service_prediction,
                                                                                 tmp_path):
    from engine.data.processing import apply_processing

    raw = _upload(client, _tickets_with_times(160, 4), "rawin-dated-tickets", "team")
    processing = {
        "imputation": {"strategy": "most_frequent", "columns": ["when", "amount"]},
        "feature_engineering": {"label_column": "team", "text_columns": ["text"], "date_part_columns": ["when"],
                                "cyclical_dates": True},
        "normalization": {"method": "standard"},
    }
    pipeline = client.create_data_pipeline(raw.name, processing, data_pipeline_id="rawin-dated")
    processed = client.run_data_pipeline(pipeline.name, raw.name)
    job = client.wait(client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "logistic_regression"},
        "trainingConfig": {"epochs": 3, "seed": 2},
        "dataConfig": {"trainDataset": processed.name, "labelColumn": "team"},
    }, training_job_id="rawin-dated").name, timeout=300)
    assert job.state == common_pb2.JOB_STATE_COMPLETED, job.state_message

    frame = pd.concat([_tickets_with_times(25, 9),
                       pd.DataFrame({"text": HARD_TEXTS[:len(HARD_TIMES)], "team": "billing",
                                     "when": pd.to_datetime(pd.Series(HARD_TIMES, dtype=object), format="ISO8601"),
                                     "amount": np.linspace(0, 300, len(HARD_TIMES))})], ignore_index=True)
    frame["text"] = frame["text"].astype("str")  # None stays missing
    frame["when"] = frame["when"].astype("datetime64[ns]")
    fitted = server.engine.trainer.fitted_processing_of(
        {"operation": "data_pipeline", "parameters": {"data_pipeline": pipeline.name}})
    _, prediction, classes, prep = service_prediction(job.name, apply_processing(frame, fitted), tmp_path)
    assert any("_tfidf_" in name for name in prep["feature_names"]) and "when_hour_sin" in prep["feature_names"]

    meta = client.export_model(job.name, "onnx", tmp_path)
    assert meta.raw_columns
    assert {(i.name, i.dtype, tuple(i.shape)) for i in meta.inputs} == {
        ("text", "string", (-1, 1)), ("when", "int64", (-1, 1)), ("amount", "float64", (-1, 1))}
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / meta.filename), providers=["CPUExecutionProvider"])
    feeds = {"text": np.array(["" if pd.isna(t) else t for t in frame["text"]], dtype=object).reshape(-1, 1),
             "when": _nanos(frame["when"]).reshape(-1, 1),
             "amount": frame["amount"].to_numpy(dtype=np.float64).reshape(-1, 1)}
    (got,) = session.run(["probabilities"], feeds)
    want = prediction.probabilities
    assert list(meta.class_labels) == [str(c) for c in classes]
    assert got.shape == want.shape == (len(frame), 3)
    assert float(np.max(np.abs(got - want))) <= TOLERANCE
    assert np.ptp(want, axis=0).max() > 1e-3
