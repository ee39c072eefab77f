"""The generated docs match what their generators make now, as `make check-generated` does for
code: docs/api/ from the proto comments, docs/configuration.md from the `forge-training` parser.
A failure says which command regenerates the stale page."""

from __future__ import annotations

from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_fresh(api_docs):
    stale = api_docs.stale(api_docs.generate(), api_docs.OUT_DIR)
    assert not stale, f"docs/api is stale ({', '.join(stale)}): run .venv/bin/python tools/gen_api_docs.py"


def test_configuration_reference_is_fresh(config_docs):
    assert config_docs.OUT.read_text() == config_docs.generate(), \
        "docs/configuration.md is stale: run .venv/bin/python tools/gen_config_docs.py"


def test_a_changed_missing_or_extra_api_page_is_stale(api_docs, tmp_path):
    pages = {"a.md": "one\n", "b.md": "two\n"}
    (tmp_path / "a.md").write_text("one\n")
    assert api_docs.stale(pages, tmp_path) == ["b.md"]
    (tmp_path / "b.md").write_text("changed\n")
    (tmp_path / "gone.md").write_text("a proto file that was removed\n")
    assert api_docs.stale(pages, tmp_path) == ["b.md", "gone.md"]


def test_every_rpc_and_message_has_its_comment(api_docs):
    pages = api_docs.generate()
    trainer = pages["trainer_service.md"]
    assert "#### StartTraining" in trainer and "Starts a training job." in trainer
    # Types in other files link to their page and anchor.
    assert "[`TrainingJob`](training_job.md#trainingjob)" in trainer
    assert "| `JOB_STATE_PAUSED` | 4 | Stopped after a checkpoint" in pages["common.md"]
    assert "[`UploadDataset`](data_service.md#uploaddataset)" in pages["README.md"]


def test_environment_variables_are_found_by_setting_them(config_docs):
    parser = config_docs.build_parser()
    serve = dict(config_docs.subcommands(parser))[("serve",)]
    by_flag = {a.option_strings[-1]: a for a in config_docs.options(serve) if a.option_strings}
    roots = config_docs.environment_variable(("serve",), by_flag["--data-root"])
    assert (roots.name, roots.comma_separated) == ("FORGE_TRAINING_DATA_ROOTS", True)
    assert config_docs.environment_variable(("serve",), by_flag["--insecure"]).name == "FORGE_TRAINING_INSECURE"
    create = dict(config_docs.subcommands(parser))[("keys", "create")]
    name = next(a for a in config_docs.options(create) if a.dest == "name")
    assert config_docs.environment_variable(("keys", "create"), name) is None
