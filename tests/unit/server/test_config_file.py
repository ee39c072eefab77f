"""`serve --config FILE` and `config show`: the file under the environment under the flags,
every error naming the key and what it expects, secrets masked."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest
import yaml

from engine.storage.artifacts import masked_url
from server import config_file, main as server_main

SEED_LIKE = """
enabled: true
data_path: {tmp}/data
checkpoint_path: {tmp}/checkpoints
model_path: {tmp}/models
max_concurrent_jobs: 5
default_resources:
  cpu: 8
  memory: 16Gi
  gpu: 1
  timeout: 6h
  priority: 2
storage:
  type: local
server:
  address: 127.0.0.1:50999
  database_url: postgresql://forge:hunter2@db.internal:5432/forge
  limits:
    max_columns: 50
  observability:
    log_format: json
"""


@pytest.fixture
def clean_env(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("FORGE_TRAINING_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def _effective(*argv: str):
    parser = server_main.build_parser()
    args = parser.parse_args(["serve", *argv])
    return server_main.effective_config(parser, args, ["serve", *argv]), args


def _write(tmp_path: Path, text: str, name: str = "forge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).format(tmp=tmp_path))
    return path


def test_the_seeds_configuration_sets_the_server_and_engine(clean_env, tmp_path):
    config, _ = _effective("--config", str(_write(tmp_path, SEED_LIKE)))
    assert config.training_enabled and config.max_concurrent_jobs == 5
    assert config.data_dir == tmp_path / "data" and config.checkpoint_dir == tmp_path / "checkpoints"
    assert config.storage.type == "local" and config.storage.base_path == str(tmp_path / "models")
    assert (config.default_job_cpu, config.default_job_gpu, config.default_job_priority) == ("8", 1, 2)
    assert config.default_job_memory_bytes == 16 * 1024 ** 3 and config.default_job_timeout_seconds == 6 * 3600
    assert config.address == "127.0.0.1:50999" and config.ingest_limits.max_columns == 50
    assert config.log_format == "json"
    engine = config.engine_settings()  # the engine is built from the same object
    assert engine.checkpoint_dir == tmp_path / "checkpoints" and engine.default_priority == 2


def test_environment_overrides_the_file_and_flags_override_both(clean_env, tmp_path):
    path = str(_write(tmp_path, SEED_LIKE))
    clean_env.setenv("FORGE_TRAINING_MAX_CONCURRENT_JOBS", "3")
    clean_env.setenv("FORGE_TRAINING_ADDRESS", "")  # empty: unset, as the flag's parser reads it
    clean_env.setenv("FORGE_TRAINING_DEFAULT_JOB_GPU", "0")
    config, _ = _effective("--config", path, "--default-job-gpu=2", "--log-format", "text")
    assert config.max_concurrent_jobs == 3  # environment over file
    assert config.default_job_gpu == 2 and config.log_format == "text"  # flags over environment and file
    assert config.default_job_priority == 2  # the file where nothing else speaks
    assert config.address == "127.0.0.1:50999"
    with pytest.raises(SystemExit):  # abbreviations would dodge the precedence rule: not accepted
        _effective("--config", path, "--max-conc", "4")
    clean_env.setenv("FORGE_TRAINING_CONFIG", path)  # the file itself can come from the environment
    assert _effective()[0].max_concurrent_jobs == 3


def test_every_key_is_a_serve_flag_and_its_environment_variable_is_the_one_the_flag_reads(config_docs):
    """env_name (which the file yields to) is the variable the flag's parser reads, as the docs
    generator finds it by setting each candidate."""
    serve = dict(config_docs.subcommands(config_docs.build_parser()))[("serve",)]
    actions = {action.dest: action for action in config_docs.options(serve)}
    for key in config_file.KEYS:
        found = config_docs.environment_variable(("serve",), actions[key.dest])
        assert found is not None and found.name == config_file.env_name(actions[key.dest]), key.path


@pytest.mark.parametrize("text, message", [
    ("max_concurent_jobs: 3", "unknown key max_concurent_jobs: did you mean max_concurrent_jobs?"),
    ("max_concurrent_jobs: five", "max_concurrent_jobs: expected an integer, got 'five'"),
    ("default_resources:\n  timeout: forever", "default_resources.timeout: expected a duration such as 90s"),
    ("server:\n  auth: password", "server.auth: expected one of none, api-key, got 'password'"),
    ("storage:\n  type: ftp", "storage.type: expected one of local, s3, gcs, azure, got 'ftp'"),
    ("storage:\n  s3:\n    secret_key: abc", "credentials are not read from the configuration file"),
    ("max_concurrent_jobs: 0", "--max-concurrent-jobs must be at least 1 (set by max_concurrent_jobs in"),
    ("default_resources:\n  memory: lots", "'lots' is not a memory quantity"),
    ("default_resources:\n  cpu: -2", "(set by default_resources.cpu in"),
    ("storage:\n  type: s3", "s3 storage needs a bucket"),
    ("model_path: a\nstorage:\n  local:\n    base_path: b", "storage.local.base_path and model_path set the same"),
    ("storage:\n  type: gcs\n  s3:\n    bucket: b", "storage.s3 is given but storage.type is 'gcs'"),
    ("storage:\n  s3:\n    bucket: b\n  gcs:\n    bucket: c", "storage has sections gcs and s3: set storage.type"),
    ("- a list", "expected a mapping of keys"),
    ("enabled: [", "not valid YAML"),
])
def test_a_bad_file_stops_the_server_naming_the_key_and_the_expected_value(clean_env, tmp_path, text, message):
    path = tmp_path / "forge.yaml"
    path.write_text(text + "\n")
    with pytest.raises(SystemExit) as stopped:
        _effective("--config", str(path))
    assert message in str(stopped.value.code)
    assert str(path) in str(stopped.value.code) or "(set by" not in message


def test_a_missing_file_says_so(clean_env, tmp_path):
    with pytest.raises(SystemExit, match="--config .*nope.yaml: No such file"):
        _effective("--config", str(tmp_path / "nope.yaml"))


def test_config_show_prints_the_effective_configuration_with_secrets_masked(clean_env, tmp_path, capsys):
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    path = _write(tmp_path, SEED_LIKE.replace("type: local", "type: s3\n  s3:\n    bucket: models\n"
                                                                     "    region: eu-west-1")
                  .replace("model_path: {tmp}/models\n", ""))
    assert server_main.main(["config", "show", "--config", str(path), "--max-concurrent-jobs", "4"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert "hunter2" not in out and "s3cr3t" not in out
    assert shown["server"]["database_url"] == "postgresql://forge:****@db.internal:5432/forge"
    assert shown["storage"] == {"type": "s3", "s3": {"bucket": "models", "prefix": "", "region": "eu-west-1",
                                                      "endpoint_url": ""},
                                "credentials": {"AWS_ACCESS_KEY_ID": "(not set)",
                                                "AWS_SECRET_ACCESS_KEY": "**** (set)",
                                                "AWS_SESSION_TOKEN": "(not set)", "AWS_PROFILE": "(not set)"}}
    assert shown["max_concurrent_jobs"] == 4 and shown["default_resources"]["timeout"] == "21600s"
    assert masked_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"  # nothing to mask
    assert masked_url("postgresql://db/forge?user=f&password=p1&sslmode=require") == \
        "postgresql://db/forge?user=f&password=****&sslmode=require"
    assert masked_url("https://u:pw@collector:4318/v1/traces?token=abc") == \
        "https://u:****@collector:4318/v1/traces?token=****"


def test_the_keys_documented_are_the_keys_read():
    documented = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    text = documented.read_text()
    for key in config_file.KEYS:
        assert f"`{key.path}`" in text, f"docs/configuration.md does not describe {key.path}"


def test_no_flag_and_no_file_leaves_everything_as_before(clean_env):
    config, args = _effective()
    assert isinstance(args, argparse.Namespace) and config.training_enabled and config.checkpoint_dir is None
    assert config.engine_settings().resolved_warm_workers() == 2


def test_the_example_file_is_a_valid_configuration(clean_env):
    example = Path(__file__).resolve().parents[3] / "examples" / "forge.yaml"
    config, _ = _effective("--config", str(example))
    assert config.training_enabled and config.default_job_memory_bytes == 8 * 1024 ** 3


def test_an_application_loads_the_same_configuration_and_gets_value_errors(clean_env, tmp_path):
    path = _write(tmp_path, SEED_LIKE)
    config = server_main.load_config(path, "--address", "127.0.0.1:0")
    assert config.address == "127.0.0.1:0" and config.default_job_priority == 2
    (tmp_path / "bad.yaml").write_text("enabled: maybe\n")
    with pytest.raises(ValueError, match="enabled: expected true or false, got 'maybe'"):
        server_main.load_config(tmp_path / "bad.yaml")


def test_an_application_gets_a_flag_mistake_as_a_value_error(clean_env):
    with pytest.raises(ValueError, match="argument --executor: invalid choice: 'slurm'"):
        server_main.load_config(None, "--executor", "slurm")
