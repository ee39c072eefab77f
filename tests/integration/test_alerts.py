"""Alerts and pipeline triggers through a real server and the SDK: a webhook receiver on
loopback checks each alert's signature, body and retries; deliveries are visible through the
API; datasets and signed HTTP calls start pipeline executions."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from forge.training import Client, ForgeTrainingError, alert_pb2, common_pb2, struct_to_dict, webhooks
from forge.training.cli import main

SECRET = "alert-secret-0123456789"
TRIGGER_SECRET = "trigger-secret-0123456789"
COMPLETED, FAILED = common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED


class Receiver:
    """A webhook receiver on loopback: /ok answers 200, /flaky 500 twice per delivery then 200,
    /down always 503. Every request is kept as (path, headers, body)."""

    def __init__(self):
        self.calls: list[tuple[str, dict, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.calls.append((self.path, dict(self.headers), body))
                    tries = sum(1 for p, h, _ in receiver.calls
                                if p == self.path and h["X-Forge-Delivery"] == self.headers["X-Forge-Delivery"])
                status = {"/ok": 200, "/down": 503}.get(self.path, 500 if tries <= 2 else 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def bodies(self, path: str) -> list[dict]:
        with self.lock:
            return [json.loads(body) for p, _, body in self.calls if p == path]


@pytest.fixture(scope="module")
def receiver():
    running = Receiver()
    yield running
    running.httpd.shutdown()


@pytest.fixture(scope="module")
def server(module_server):
    return module_server(alert_retry_seconds=0.2, alert_max_attempts=3, webhook_address="127.0.0.1:0")


@pytest.fixture(scope="module")
def forge(server):
    with Client(server.target) as client:
        yield client


@pytest.fixture(scope="module")
def train(forge, breast_cancer_csv):
    return forge.upload_dataset(breast_cancer_csv, dataset_id="alerts-bc", label_column="target").name


def _job(train: str, alerts: list[dict], **extra) -> dict:
    return {"modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": 4, "seed": 1}, "dataConfig": {"trainDataset": train, "labelColumn": "target"},
            "alerts": alerts, **extra}


def _until(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_state_and_metric_alerts_are_signed_retried_and_listed(forge, train, receiver):
    job = forge.start_training(_job(train, [
        {"name": "failed", "onStates": ["JOB_STATE_FAILED"], "webhookUrl": f"{receiver.url}/ok",
         "webhookSecret": SECRET},
        {"name": "good", "metric": {"metric": "accuracy", "above": 0.5}, "webhookUrl": f"{receiver.url}/flaky",
         "webhookSecret": SECRET},
        {"name": "done", "onStates": ["JOB_STATE_COMPLETED"]},  # to the log only
    ]))
    assert forge.wait(job.name, timeout=120).state == COMPLETED
    delivered = _until(lambda: [d for d in forge.list_alert_deliveries(job.name)
                                if d.state == alert_pb2.ALERT_DELIVERY_STATE_DELIVERED])
    # The accuracy crossed 0.5 once (it stayed above): one alert, delivered on its third attempt.
    assert len(delivered) == 1 and delivered[0].alert == "good" and delivered[0].attempts == 3
    assert delivered[0].last_response_code == 200 and delivered[0].last_error == ""
    with receiver.lock:
        calls = [(h, body) for p, h, body in receiver.calls if p == "/flaky"
                 and h["X-Forge-Delivery"] == delivered[0].id]
    assert len(calls) == 3 and all(webhooks.verify(SECRET, h, body) for h, body in calls)
    assert not webhooks.verify("another secret", calls[0][0], calls[0][1])
    assert not webhooks.verify(SECRET, calls[0][0], calls[0][1] + b" ")
    body = json.loads(calls[-1][1])
    assert (body["alert"], body["event"], body["resource"], body["metric"], body["above"]) == (
        "good", "metric_threshold", job.name, "accuracy", 0.5)
    assert body["value"] > 0.5 and body["epoch"] == 1 and calls[-1][0]["X-Forge-Event"] == "metric_threshold"
    assert dict(delivered[0].payload)["id"] == delivered[0].id
    logs = [e.message for e in forge.get_logs(job.name)]
    assert f"alert 'done': {job.name} is COMPLETED (completed after epoch 4)" in logs
    assert any(m.startswith(f"alert 'good': accuracy of {job.name} is ") for m in logs)
    # The command line lists them too.
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--target", forge.target, "alerts", job.name]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ALERT", "EVENT", "STATE", "ATTEMPTS", "LAST", "ERROR", "FIRED", "RESOURCE"]
    assert lines[1].split()[:5] == ["good", "metric_threshold", "delivered", "3", "200"]
    # The secret is never returned, only whether one is set.
    rules = forge.get_job(job.name).spec.alerts
    assert [(r.name, r.webhook_secret, r.webhook_secret_set) for r in rules] == [
        ("failed", "", True), ("good", "", True), ("done", "", False)]


def test_a_receiver_that_stays_down_gets_a_failed_delivery(forge, train, receiver):
    job = forge.start_training(_job(train, [
        {"name": "page-me", "onStates": ["JOB_STATE_FAILED"], "webhookUrl": f"{receiver.url}/down"}],
        callbacks=[{"name": "no", "type": "metric_threshold",
                    "config": {"metric": "accuracy", "above": 0.0, "action": "fail"}}]))
    assert forge.wait(job.name, timeout=120).state == FAILED
    (delivery,) = _until(lambda: [d for d in forge.list_alert_deliveries(job.name)
                                  if d.state == alert_pb2.ALERT_DELIVERY_STATE_FAILED])
    assert delivery.attempts == 3 and delivery.last_response_code == 503
    assert delivery.last_error == "HTTP 503 Service Unavailable"  # the receiver's answer ("no") is not kept
    assert delivery.webhook_url == f"{receiver.url}/…"  # the path may be the receiver's credentials
    body = receiver.bodies("/down")[-1]
    assert body["state"] == "FAILED" and body["message"].startswith("failed: callback 'no'")
    assert "X-Forge-Signature" not in receiver.calls[-1][1]  # no secret: unsigned


def test_pipeline_and_tuning_alerts(forge, train, receiver):
    pipeline = forge.create_pipeline({"stages": [
        {"id": "check", "type": "data_validation", "parameters": {"dataset": train, "rules": {"min_rows": 10}}}],
        "alerts": [{"name": "ran", "onStates": ["JOB_STATE_COMPLETED"], "webhookUrl": f"{receiver.url}/ok",
                    "webhookSecret": SECRET}]}, pipeline_id="alerted")
    execution = forge.execute_pipeline(pipeline.name)
    assert forge.wait_execution(execution.name, timeout=60).state == COMPLETED
    (delivery,) = _until(lambda: list(forge.list_alert_deliveries(pipeline.name)))
    assert delivery.resource == execution.name and delivery.alert == "ran"
    _until(lambda: delivery.id in {b["id"] for b in receiver.bodies("/ok")})
    assert forge.get_pipeline(pipeline.name).alerts[0].webhook_secret_set
    events = list(forge.watch_execution(execution.name))
    assert any(e.message.startswith("alert 'ran': ") for e in events)

    tuning = forge.start_tuning({
        "baseRequest": _job(train, []), "objectiveMetric": "accuracy", "algorithm": "SEARCH_ALGORITHM_GRID",
        "parameters": [{"path": "model_config.hyperparameters.alpha", "values": {"values": [0.0001, 0.001]}}],
        "alerts": [{"name": "best", "metric": {"metric": "objective", "above": 0.5},
                    "webhookUrl": f"{receiver.url}/ok"},
                   {"name": "over", "onStates": ["JOB_STATE_COMPLETED"], "webhookUrl": f"{receiver.url}/ok"}]})
    _until(lambda: forge.get_tuning_job(tuning.name).state == COMPLETED, timeout=120)

    def all_delivered():
        deliveries = list(forge.list_alert_deliveries(tuning.name))
        done = all(d.state == alert_pb2.ALERT_DELIVERY_STATE_DELIVERED for d in deliveries)
        return deliveries if len(deliveries) == 2 and done else None

    deliveries = _until(all_delivered)
    # The first best trial's objective crossed 0.5 (later bests stayed above); the job completed.
    assert sorted(d.alert for d in deliveries) == ["best", "over"]
    best = next(dict(d.payload) for d in deliveries if d.alert == "best")
    assert best["metric"] == "objective" and best["value"] > 0.5 and "trial" in best


def test_secrets_in_a_pipelines_training_stage_are_never_returned(forge, train, receiver):
    request = _job(train, [{"name": "s", "onStates": ["JOB_STATE_COMPLETED"], "webhookUrl": f"{receiver.url}/ok",
                            "webhookSecret": "stage-secret-987654"}])
    pipeline = forge.create_pipeline({"stages": [{"id": "train", "type": "model_training",
                                                  "parameters": {"request": request}}]}, pipeline_id="secretive")
    execution = forge.execute_pipeline(pipeline.name)
    assert forge.wait_execution(execution.name, timeout=120).state == COMPLETED
    shown = [forge.get_pipeline(pipeline.name), *forge.list_pipelines(), *forge.watch_execution(execution.name),
             forge.get_execution(execution.name)]
    assert not any(b"stage-secret-987654" in message.SerializeToString() for message in shown)
    stage = struct_to_dict(forge.get_pipeline(pipeline.name).stages[0].parameters)
    assert stage["request"]["alerts"][0]["webhookSecretSet"] is True


def test_a_new_dataset_triggers_its_pipelines(forge, breast_cancer_frame):
    pipeline = forge.create_pipeline({"stages": [
        {"id": "check", "type": "data_validation",
         "parameters": {"dataset": "${input.dataset}", "rules": {"min_rows": 5}}}],
        "triggers": [{"name": "new-sales", "event": "TRIGGER_EVENT_DATASET_CREATED",
                      "datasetLabels": {"feed": "sales"}, "input": {"note": "nightly"}}]}, pipeline_id="on-data")
    csv = breast_cancer_frame.head(20).to_csv(index=False).encode()
    forge.upload_dataset(csv, format="csv", dataset_id="unlabelled-feed")  # no label: no execution
    labelled = forge.upload_dataset(csv, format="csv", dataset_id="sales-feed", labels={"feed": "sales"})
    (execution,) = _until(lambda: list(forge.list_executions(pipeline.name)))
    assert execution.trigger == "trigger:new-sales"
    assert dict(execution.input) == {"note": "nightly", "dataset": labelled.name}
    assert forge.wait_execution(execution.name, timeout=60).state == COMPLETED


def test_a_pipeline_made_from_a_template_has_its_own_alerts_triggers_and_schedule(forge, breast_cancer_frame):
    template = forge.create_template({
        "stages": [{"id": "check", "type": "data_validation",
                    "parameters": {"dataset": "${input.dataset}", "rules": {"min_rows": "${params.rows}"}}}],
        "parameters": [{"name": "rows", "type": "integer", "defaultValue": 5}]}, template_id="checks")
    pipeline = forge.create_from_template(
        template.name, {"rows": 3}, pipeline_id="from-template",
        alerts=[{"name": "ran", "onStates": ["JOB_STATE_COMPLETED"]}],
        triggers=[{"name": "on-feed", "event": "TRIGGER_EVENT_DATASET_CREATED", "datasetLabels": {"feed": "tpl"}}],
        schedule={"cron": "0 3 * * *", "paused": True})
    shown = forge.get_pipeline(pipeline.name)
    assert shown.template == template.name and [a.name for a in shown.alerts] == ["ran"]
    assert [t.name for t in shown.triggers] == ["on-feed"] and shown.schedule.cron == "0 3 * * *"
    csv = breast_cancer_frame.head(10).to_csv(index=False).encode()
    made = forge.upload_dataset(csv, format="csv", dataset_id="tpl-feed", labels={"feed": "tpl"})
    (execution,) = _until(lambda: list(forge.list_executions(pipeline.name)))
    assert dict(execution.input) == {"dataset": made.name}
    assert forge.wait_execution(execution.name, timeout=60).state == COMPLETED
    assert any(e.message.startswith("alert 'ran': ") for e in forge.watch_execution(execution.name))


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_signed_http_call_triggers_a_pipeline(forge, server, train):
    pipeline = forge.create_pipeline({"stages": [
        {"id": "check", "type": "data_validation",
         "parameters": {"dataset": "${input.dataset}", "rules": {"min_rows": 5}}}],
        "triggers": [{"name": "deploy-hook", "event": "TRIGGER_EVENT_WEBHOOK", "secret": TRIGGER_SECRET}]},
        pipeline_id="on-call")
    assert forge.get_pipeline(pipeline.name).triggers[0].secret_set
    assert forge.get_pipeline(pipeline.name).triggers[0].secret == ""
    url = f"http://127.0.0.1:{server.webhook_port}/v1/{pipeline.name}/triggers/deploy-hook"
    body = json.dumps({"dataset": train}).encode()
    headers = webhooks.signed_headers(TRIGGER_SECRET, body)
    status, answer = _post(url, body, headers)
    assert status == 202 and answer["execution"].startswith(f"{pipeline.name}/executions/")
    done = forge.wait_execution(answer["execution"], timeout=60)
    assert done.state == COMPLETED and done.trigger == "trigger:deploy-hook" and dict(done.input) == {"dataset": train}

    assert _post(url, body, headers)[0] == 401  # the same signed call again: a replay
    assert _post(url, body, webhooks.signed_headers("wrong-secret-0123456789", body))[0] == 401
    assert _post(url, body, webhooks.signed_headers(TRIGGER_SECRET, body, now=time.time() - 900))[0] == 401
    assert _post(url, body, {})[0] == 401
    # An unknown trigger is refused as a bad signature is: nothing tells a caller what exists.
    assert _post(url.replace("deploy-hook", "other"), body, webhooks.signed_headers(TRIGGER_SECRET, body))[0] == 401
    # A body that does not say its length (or lies about it) costs the server nothing.
    for length in ("", "Content-Length: -1\r\n", "Content-Length: lots\r\n"):
        with socket.create_connection(("127.0.0.1", server.webhook_port), timeout=10) as raw:
            raw.sendall(f"POST /v1/{pipeline.name}/triggers/deploy-hook HTTP/1.1\r\nHost: x\r\n{length}\r\n"
                        .encode())
            assert raw.recv(100).startswith(b"HTTP/1.0 411 ")
    status, answer = _post(url, b"[1]", webhooks.signed_headers(TRIGGER_SECRET, b"[1]"))
    assert status == 400 and "JSON object" in answer["error"]
    assert len(list(forge.list_executions(pipeline.name))) == 1


@pytest.mark.parametrize("alerts, field, words", [
    ([{"name": "x", "onStates": ["JOB_STATE_FAILED"], "webhookUrl": "ftp://example.com"}], "alerts[0].webhook_url",
     "is not an http:// or https:// URL"),
    ([{"name": "x"}], "alerts[0]", "fires on nothing"),
    ([{"name": "x", "metric": {"metric": "accuracy"}}], "alerts[0].metric", "give exactly one of above and below"),
    ([{"name": "x", "onStates": ["JOB_STATE_FAILED"], "webhookSecret": "s"}], "alerts[0].webhook_secret",
     "set webhook_url too"),
    ([{"name": "x", "metric": {"metric": "val_los", "above": 1}}], "alerts[0].metric.metric",
     "'val_los' is not reported for classification"),
])
def test_bad_alert_rules_are_refused_naming_the_field(forge, train, alerts, field, words):
    with pytest.raises(ForgeTrainingError) as err:
        forge.start_training(_job(train, alerts))
    assert err.value.field_violations[0].field == field and words in err.value.message


def test_bad_pipeline_alerts_and_triggers_are_refused(forge, train):
    stages = [{"id": "check", "type": "data_validation", "parameters": {"dataset": train, "rules": {"min_rows": 1}}}]
    for extra, field in (
            ({"alerts": [{"name": "x", "metric": {"metric": "accuracy", "above": 1}}]}, "pipeline.alerts[0].metric"),
            ({"triggers": [{"name": "x", "event": "TRIGGER_EVENT_WEBHOOK"}]}, "pipeline.triggers[0].secret"),
            ({"triggers": [{"name": "x"}]}, "pipeline.triggers[0].event")):
        with pytest.raises(ForgeTrainingError) as err:
            forge.create_pipeline({"stages": stages, **extra})
        assert err.value.field_violations[0].field == field
