"""The `forge-training` command line through a real server on port 0: datasets, a job from a YAML
file watched to the end, its logs, export and curves, pipelines, tuning, and the exit codes and
one-line errors scripts rely on (docs/cli.md). Most commands run in this process through
main(argv); one test runs the installed script, which also forwards the server's commands."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple

import pytest

from forge.training import common_pb2
from forge.training.cli import main

FORGE_TRAINING = str(Path(sys.executable).with_name("forge-training"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def forge(server):
    """forge(*argv) -> Result: the command line against the test server, in this process."""

    def run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--target", server.target, *argv])
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="module")
def splits(forge, breast_cancer_csv):
    uploaded = forge("datasets", "upload", str(breast_cancer_csv), "--id", "cli-bc", "--label-column", "target",
                     "--label", "source=sklearn", "--label", "team=ml")
    assert uploaded.code == 0 and uploaded.err == ""
    shown = json.loads(forge("datasets", "show", "cli-bc", "--output", "json").out)
    assert shown["labels"] == {"source": "sklearn", "team": "ml"}
    assert re.fullmatch(r"projects/default/datasets/cli-bc: 569 rows, 31 columns, \d+\.\d KiB\n", uploaded.out)
    parts = forge("datasets", "split", "cli-bc", "--ratios", "0.7,0.15,0.15", "--seed", "42",
                  "--stratify-column", "target", "--output", "json")
    assert parts.code == 0, parts.err
    return [p["name"] for p in json.loads(parts.out)]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _one_error_line(result: Result) -> str:
    assert result.out == "" or "Traceback" not in result.out
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("forge-training: error: "), result.err
    return lines[0].removeprefix("forge-training: error: ")


def _job_yaml(path: Path, train: str, *, epochs: int = 3, extra: str = "", validation: str = "",
              test: str = "") -> Path:
    path.write_text(f"""\
modelType: classification
modelConfig: {{framework: sklearn, architecture: sgd}}
trainingConfig: {{epochs: {epochs}, seed: 7}}
dataConfig:
  trainDataset: {train}
  labelColumn: target
{f"  validationDataset: {validation}" if validation else ""}
{f"  testDataset: {test}" if test else ""}
{extra}
""")
    return path


def test_datasets_show_schema_and_statistics_and_list_as_json(forge, splits, breast_cancer_frame):
    assert [s.rsplit("/", 1)[1] for s in splits] == ["cli-bc-train", "cli-bc-validation", "cli-bc-test"]
    shown = forge("datasets", "show", "cli-bc")
    assert shown.code == 0 and shown.err == ""
    assert re.search(r"^rows:\s+569$", shown.out, re.M) and re.search(r"^label column:\s+target$", shown.out, re.M)
    radius = next(line for line in shown.out.splitlines() if line.startswith("mean_radius "))
    frame = breast_cancer_frame["mean_radius"]
    assert radius.split()[1:7] == ["float64", "0", str(frame.nunique()), f"{frame.min():.4g}", f"{frame.mean():.4g}",
                                   f"{frame.max():.4g}"]
    assert "label distribution (target): 1: 357, 0: 212" in shown.out

    as_json = json.loads(forge("datasets", "show", "cli-bc", "--output", "json").out)
    assert as_json["rowCount"] == "569" and len(as_json["schema"]["columns"]) == 31
    assert {c["name"] for c in as_json["statistics"]["columns"]} == set(breast_cancer_frame.columns)

    listed = forge("datasets", "list", "--output", "json")
    assert listed.code == 0
    names = {d["name"] for d in json.loads(listed.out)}
    assert {"projects/default/datasets/cli-bc", *splits} <= names
    rows = {d["name"]: d["rowCount"] for d in json.loads(listed.out)}
    assert [rows[s] for s in splits] == ["398", "86", "85"]


def test_validate_exits_1_listing_each_failed_rule(forge, splits, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("requiredColumns: [target]\nconstraints:\n  - {column: mean_radius, max: 20}\n")
    failed = forge("datasets", "validate", "cli-bc", str(rules))
    assert failed.code == 1
    assert re.search(r"^max\s+mean_radius\s+\d+\s", failed.out, re.M)
    rules.write_text("requiredColumns: [target]\nminRows: 100\n")
    assert forge("datasets", "validate", "cli-bc", str(rules)) == (0, "cli-bc: valid\n", "")


def test_a_job_from_yaml_is_watched_logged_exported_and_plotted(forge, client, splits, tmp_path):
    spec = _job_yaml(tmp_path / "job.yaml", splits[0], validation=splits[1], test=splits[2])
    started = forge("jobs", "start", str(spec), "--id", "cli-sgd", "--watch")
    assert started.code == 0, started.err
    lines = started.out.splitlines()
    assert re.fullmatch(r"projects/default/trainingJobs/cli-sgd (PENDING|RUNNING)", lines[0])
    # Not a terminal: one line per epoch, with the values the server recorded.
    history = client.metric_history("cli-sgd")
    assert [line for line in lines if line.startswith("epoch ")] == [
        f"epoch {p.epoch}/3  training_loss {p.training_loss:.4g}  validation_loss {p.validation_loss:.4g}  "
        f"accuracy {p.accuracy:.4g}  f1_score {p.f1_score:.4g}  ({p.epoch_seconds:.2f} s)" for p in history]
    job = client.get_job("cli-sgd")
    assert job.state == common_pb2.JOB_STATE_COMPLETED
    assert lines[-1].startswith("projects/default/trainingJobs/cli-sgd COMPLETED after epoch 3; test accuracy ")
    assert lines[-1].endswith(f"; model version {job.model_version}")

    # Watching a finished job again as JSON Lines: every point, then the final job.
    watched = forge("jobs", "watch", "cli-sgd", "--output", "json")
    records = [json.loads(line) for line in watched.out.splitlines()]
    assert watched.code == 0 and [r["epoch"] for r in records[:-1]] == [1, 2, 3]
    assert records[-1]["state"] == "JOB_STATE_COMPLETED" and records[-1]["modelVersion"] == job.model_version

    logs = forge("jobs", "logs", "cli-sgd")
    assert logs.code == 0 and logs.out.splitlines()[-1].endswith("INFO    completed after epoch 3")
    as_json = [json.loads(line) for line in forge("jobs", "logs", "cli-sgd", "--output", "json").out.splitlines()]
    assert [int(e["sequence"]) for e in as_json] == list(range(1, len(as_json) + 1))

    listed = json.loads(forge("jobs", "list", "--state", "completed", "--output", "json").out)
    assert job.name in {j["name"] for j in listed} and {j["state"] for j in listed} == {"JOB_STATE_COMPLETED"}

    exported = forge("export", "cli-sgd", "--format", "onnx", "-o", str(tmp_path / "model.onnx"))
    assert exported.code == 0, exported.err
    data = (tmp_path / "model.onnx").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert exported.out == f"wrote {tmp_path / 'model.onnx'}: onnx, {len(data) / 1024:.1f} KiB, sha256 {digest}\n"

    # On a terminal, stderr shows the bytes as they arrive.
    terminal = Terminal()
    with redirect_stdout(io.StringIO()), redirect_stderr(terminal):
        assert main(["--target", client.target, "export", "cli-sgd", "-o", str(tmp_path / "again.onnx")]) == 0
    assert terminal.getvalue().endswith(f"exporting cli-sgd as onnx: {len(data) / 1024:.1f} KiB / "
                                        f"{len(data) / 1024:.1f} KiB (100%)\n")
    assert (tmp_path / "again.onnx").read_bytes() == data

    plotted = forge("plot", "cli-sgd", "-o", str(tmp_path / "curves.png"))
    assert plotted.code == 0 and plotted.out == f"wrote {tmp_path / 'curves.png'}: 3 epochs of {job.name}\n"
    image = (tmp_path / "curves.png").read_bytes()
    assert image.startswith(PNG_MAGIC) and len(image) > 20_000
    from PIL import Image

    with Image.open(tmp_path / "curves.png") as png:
        assert png.size[0] >= 600 and png.size[1] >= 600  # two panels: losses, scores
        assert len(png.convert("RGB").getcolors(1 << 20)) > 50  # lines, legend and text, not a blank canvas

    # The metric history as a document: CSV to a file, JSON on stdout, the values the server recorded.
    as_csv = forge("jobs", "metrics", "cli-sgd", "--format", "csv", "-o", str(tmp_path / "metrics.csv"))
    assert as_csv.code == 0 and as_csv.err.startswith(f"wrote {tmp_path / 'metrics.csv'}: csv, ")
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(int(r["epoch"]), float(r["validation_loss"]), float(r["accuracy"])) for r in rows] == [
        (p.epoch, p.validation_loss, p.accuracy) for p in history]
    document = json.loads(forge("jobs", "metrics", "cli-sgd").out)
    assert document["job"] == job.name and [p["f1_score"] for p in document["points"]] == [
        p.f1_score for p in history]

    model = json.loads(forge("models", "show", job.model_version, "--output", "json").out)
    assert model["trainingJob"] == job.name and model["exportFormats"] == ["EXPORT_FORMAT_ONNX", "EXPORT_FORMAT_PICKLE"]
    assert job.model_version in {m["name"] for m in json.loads(forge("models", "list", "--output", "json").out)}

    resumed = forge("jobs", "resume", "cli-sgd")
    assert resumed.code == 6 and "FAILED_PRECONDITION" in _one_error_line(resumed)


def test_plot_without_matplotlib_says_how_to_install_it(forge, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    result = forge("plot", "any-job", "-o", str(tmp_path / "x.png"))
    assert result.code == 2
    assert "pip install 'forge-training-client[plot]'" in _one_error_line(result)


def test_a_failed_or_cancelled_job_exits_1_with_its_reason(forge, splits, tmp_path):
    spec = _job_yaml(tmp_path / "slow.yaml", splits[0], epochs=5000, extra="resources: {timeout: 1.5s}")
    result = forge("jobs", "start", str(spec), "--id", "cli-timeout", "--watch")
    assert result.code == 1
    assert _one_error_line(result).startswith("job projects/default/trainingJobs/cli-timeout ended FAILED: the job "
                                              "exceeded its timeout of 1.5 seconds")
    assert result.out.splitlines()[-1] == "projects/default/trainingJobs/cli-timeout FAILED"

    # Cancelled is not completed either.
    long = _job_yaml(tmp_path / "long.yaml", splits[0], epochs=5000)
    assert forge("jobs", "start", str(long), "--id", "cli-cancelled").code == 0
    assert forge("jobs", "cancel", "cli-cancelled", "--wait") == (
        0, "projects/default/trainingJobs/cli-cancelled CANCELLED\n", "")
    watched = forge("jobs", "watch", "cli-cancelled")
    assert watched.code == 1 and _one_error_line(watched).startswith(
        "job projects/default/trainingJobs/cli-cancelled ended CANCELLED")


def test_a_bad_spec_exits_2_naming_the_field(forge, splits, tmp_path):
    typo = _job_yaml(tmp_path / "typo.yaml", splits[0]).read_text().replace("epochs:", "epochz:")
    (tmp_path / "typo.yaml").write_text(typo)
    result = forge("jobs", "start", str(tmp_path / "typo.yaml"))
    assert result.code == 2
    assert _one_error_line(result) == (f"{tmp_path / 'typo.yaml'}: trainingConfig.epochz: no such field in "
                                       "TrainingConfig (did you mean epochs?)")

    enum = tmp_path / "enum.json"
    enum.write_text(json.dumps({"modelType": "clasification"}))
    assert _one_error_line(forge("jobs", "start", str(enum))) == (
        f"{enum}: modelType: 'clasification' is not a ModelType; use one of: classification, regression, "
        "anomaly_detection, forecasting, recommendation")

    # What only the server can check comes back as its field violation, also exit 2.
    negative = _job_yaml(tmp_path / "negative.yaml", splits[0], epochs=-1)
    refused = forge("jobs", "start", str(negative))
    assert refused.code == 2 and _one_error_line(refused).startswith("INVALID_ARGUMENT: training_config.epochs: ")

    assert forge("jobs", "start", str(tmp_path / "missing.yaml")).code == 2
    usage = forge("jobs", "show")
    assert usage.code == 2 and _one_error_line(usage) == (
        "the following arguments are required: JOB (see `forge-training jobs show --help`)")


def test_not_found_exits_3_and_an_unreachable_server_5(forge, tmp_path):
    for argv in (("jobs", "show", "cli-nope"), ("datasets", "show", "cli-nope"),
                 ("export", "cli-nope", "-o", str(tmp_path / "m.onnx")), ("jobs", "watch", "cli-nope")):
        result = forge(*argv)
        assert result.code == 3 and _one_error_line(result).startswith("NOT_FOUND: "), argv
    assert not (tmp_path / "m.onnx").exists()

    unreachable = Result(*_in_process("--target", "127.0.0.1:1", "jobs", "list"))
    assert unreachable.code == 5
    assert "is a forge-training server running at 127.0.0.1:1? pass --target" in _one_error_line(unreachable)


def _in_process(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_a_pipeline_is_created_from_yaml_executed_and_watched(forge, splits, tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    # Stage parameters are a free-form Struct the server reads (enum values short or in full).
    pipeline.write_text(f"""\
displayName: cli pipeline
stages:
  - id: prepare
    type: data_preparation
    parameters:
      dataset: {splits[0]}
      split: {{ratios: [0.8, 0.2], seed: 2, stratify_column: target}}
  - id: train
    type: model_training
    dependencies: [prepare]
    parameters:
      request:
        modelType: MODEL_TYPE_CLASSIFICATION
        modelConfig: {{framework: sklearn, architecture: sgd}}
        trainingConfig: {{epochs: "${{input.epochs}}", seed: 4}}
        dataConfig: {{trainDataset: "${{prepare.train_dataset}}", labelColumn: target}}
""")
    created = forge("pipelines", "create", str(pipeline), "--id", "cli-pipe")
    assert created == (0, "projects/default/pipelines/cli-pipe: 2 stages\n", "")
    run = forge("pipelines", "execute", "cli-pipe", "--input", "epochs=2", "--watch")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert re.search(r"Z train metrics: epoch 2, training_loss \S+, validation_loss", run.out)
    assert any(re.search(r"Z train completed", line) for line in lines)
    assert re.fullmatch(r"projects/default/pipelines/cli-pipe/executions/\S+ COMPLETED", lines[-1])
    execution = lines[-1].split()[0]
    listed = json.loads(forge("pipelines", "executions", "cli-pipe", "--output", "json").out)
    assert [(e["name"], e["state"]) for e in listed] == [(execution, "JOB_STATE_COMPLETED")]

    # A stage that fails ends the execution FAILED: exit 1, with the reason.
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages:\n  - {id: prepare, type: data_preparation, parameters: {dataset: cli-nope}}\n")
    assert forge("pipelines", "create", str(broken), "--id", "cli-broken").code == 0
    failed = forge("pipelines", "execute", "cli-broken", "--watch")
    assert failed.code == 1 and re.search(r"ended FAILED: .*cli-nope", _one_error_line(failed))


def test_tuning_runs_a_small_search_from_yaml(forge, splits, tmp_path):
    search = tmp_path / "search.yaml"
    search.write_text(f"""\
baseRequest:
  modelType: classification
  modelConfig: {{framework: sklearn, architecture: sgd}}
  trainingConfig: {{epochs: 2, seed: 5}}
  dataConfig: {{trainDataset: {splits[0]}, labelColumn: target}}
parameters:
  - path: model_config.hyperparameters.alpha
    values: {{values: [0.0001, 0.01]}}
algorithm: grid
objectiveMetric: accuracy
parallelTrials: 2
""")
    result = forge("tuning", "start", str(search), "--id", "cli-search", "--watch")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert sorted(line.split(" ", 2)[2] for line in lines if " started alpha=" in line) == [
        "trial 0 started alpha=0.0001", "trial 1 started alpha=0.01"]
    assert re.fullmatch(r"projects/default/tuningJobs/cli-search COMPLETED .*; best trial \d: accuracy \S+ with "
                        r"alpha=\S+, model version projects/default/models/cli-search-t00\d/versions/1", lines[-1])
    shown = json.loads(forge("tuning", "show", "cli-search", "--output", "json").out)
    assert len(shown["trials"]) == 2 and {t["state"] for t in shown["trials"]} == {"JOB_STATE_COMPLETED"}


def test_the_installed_script_runs_client_commands_and_forwards_server_ones(server, tmp_path):
    helped = subprocess.run([FORGE_TRAINING, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    commands = set(re.findall(r"^    (\S+)\s", helped.stdout, re.M))
    assert {"datasets", "jobs", "export", "models", "pipelines", "tuning", "plot", "serve", "keys",
            "migrate", "config"} <= commands

    # A server command gets its own argv: migrate reports on a data dir that has no database yet.
    migrate = subprocess.run([FORGE_TRAINING, "migrate", "--show", "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.startswith(f"database: none yet at {tmp_path / 'forge.db'}")

    # config show prints the effective configuration, the database password masked.
    shown = subprocess.run([FORGE_TRAINING, "config", "show", "--data-dir", str(tmp_path),
                            "--database-url", "postgresql://forge:hunter2@db/forge"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "database_url: postgresql://forge:****@db/forge" in shown.stdout and "hunter2" not in shown.stdout

    # A client command imports neither the server nor the engine.
    probe = ("import json, sys\nfrom forge.training.cli import main\n"
             f"code = main(['--target', '{server.target}', 'datasets', 'list', '--output', 'json'])\n"
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('server', 'engine'))\n"
             "print(json.dumps({'code': code, 'loaded': loaded}), file=sys.stderr)\n")
    listed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    report = json.loads(listed.stderr.splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert isinstance(json.loads(listed.stdout), list)
