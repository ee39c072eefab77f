"""The YAML configuration file of `forge-training serve --config FILE`.

Its top level mirrors the seed's TrainingConfiguration (enabled, data_path, checkpoint_path,
model_path, max_concurrent_jobs, default_resources, storage); the service's own settings
(address, database, auth, TLS, limits, observability) sit under `server:`. Every key stands
for one flag of `forge-training serve`, so a file adds no setting of its own: it supplies
defaults that environment variables (FORGE_TRAINING_*) and then flags on the command line
override, and the effective values are checked by the same code as flags (server/config.py).

Credentials never live here (they would be copied, logged and committed with it): the
object stores read theirs from the environment, as documented in docs/configuration.md.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ForgeError
from engine.jobs.spec import parse_duration
from engine.storage.artifacts import masked_url
from server.config import ENV_PREFIX


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("an integer")


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError("a number")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("a string")


def _quantity(value: Any) -> str:
    """A Kubernetes-style quantity written as a number (cpu: 8) or a string (memory: 16Gi)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _path(value: Any) -> Path:
    return Path(_text(value))


def _duration(value: Any) -> float:
    """Seconds, from a number of seconds or a string such as 90s, 30m, 6h."""
    try:
        return parse_duration(value, "")
    except ForgeError:
        raise ValueError("a duration such as 90s, 30m or 6h (or a number of seconds)") from None


def _texts(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("a list of strings")


def _registrations(what: str, target: str) -> Callable[[Any], list[str]]:
    """A reader of {name: "module:attribute"} as a repeatable flag's NAME=MODULE:ATTRIBUTE entries."""

    def parse(value: Any) -> list[str]:
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return [f"{name}={where}" for name, where in value.items()]
        raise ValueError(f"a mapping of {what} names to '{target}'")

    return parse


@dataclass(frozen=True)
class Key:
    path: str  # dotted, e.g. default_resources.memory
    dest: str  # the serve flag's argparse dest
    parse: Callable[[Any], Any]
    secret: bool = False  # masked by `config show`


KEYS = (
    # The seed's TrainingConfiguration.
    Key("enabled", "training_enabled", _bool),
    Key("data_path", "data_dir", _path),
    Key("checkpoint_path", "checkpoint_dir", _path),
    Key("model_path", "storage_path", _text),
    Key("max_concurrent_jobs", "max_concurrent_jobs", _int),
    Key("default_resources.cpu", "default_job_cpu", _quantity),
    Key("default_resources.memory", "default_job_memory", _quantity),
    Key("default_resources.gpu", "default_job_gpu", _int),
    Key("default_resources.timeout", "default_job_timeout", _duration),
    Key("default_resources.priority", "default_job_priority", _int),
    Key("storage.type", "storage_type", _text),
    Key("storage.local.base_path", "storage_path", _text),
    Key("storage.s3.bucket", "storage_bucket", _text),
    Key("storage.s3.prefix", "storage_prefix", _text),
    Key("storage.s3.region", "storage_region", _text),
    Key("storage.s3.endpoint_url", "storage_endpoint_url", _text),
    Key("storage.gcs.bucket", "storage_bucket", _text),
    Key("storage.gcs.prefix", "storage_prefix", _text),
    Key("storage.gcs.project_id", "storage_project", _text),
    Key("storage.gcs.endpoint_url", "storage_endpoint_url", _text),
    Key("storage.azure.container", "storage_bucket", _text),
    Key("storage.azure.prefix", "storage_prefix", _text),
    Key("storage.azure.account_name", "storage_account", _text),
    # The service's own settings.
    Key("server.address", "address", _text),
    Key("server.database_url", "database_url", _text, secret=True),
    Key("server.executor", "executor", _text),
    Key("server.ray_address", "ray_address", _text),
    Key("server.warm_workers", "warm_workers", _int),
    Key("server.shutdown_grace", "shutdown_grace", _duration),
    Key("server.insecure", "insecure", _bool),
    Key("server.auth", "auth", _text),
    Key("server.tls.cert", "tls_cert", _path),
    Key("server.tls.key", "tls_key", _path),
    Key("server.tls.client_ca", "tls_client_ca", _path),
    Key("server.data_roots", "data_root", _texts),
    Key("server.model_roots", "model_root", _texts),
    Key("server.pipeline_functions", "pipeline_function", _registrations("stage function", "module:callable")),
    Key("server.callbacks", "callback", _registrations("callback type", "module:Class")),
    Key("server.allow_untrusted_pickles", "allow_untrusted_pickles", _bool),
    Key("server.limits.max_upload_bytes", "max_upload_bytes", _int),
    Key("server.limits.max_message_bytes", "max_message_bytes", _int),
    Key("server.limits.max_streams_per_key", "max_streams_per_key", _int),
    Key("server.limits.max_columns", "max_columns", _int),
    Key("server.limits.max_record_bytes", "max_record_bytes", _int),
    Key("server.limits.max_expanded_bytes", "max_expanded_bytes", _int),
    Key("server.observability.log_level", "log_level", _text),
    Key("server.observability.log_format", "log_format", _text),
    Key("server.observability.metrics_address", "metrics_address", _text),
    Key("server.alerts.retry_seconds", "alert_retry_seconds", _number),
    Key("server.alerts.max_attempts", "alert_max_attempts", _int),
    Key("server.alerts.private_webhooks", "alert_private_webhooks", _bool),
    Key("server.webhook_address", "webhook_address", _text),
    Key("server.observability.tracing", "tracing", _text),
    Key("server.observability.tracing_endpoint", "tracing_endpoint", _text),
)
_BY_PATH = {key.path: key for key in KEYS}
# Sections whose keys hold credentials in the seed: refused with where they belong instead.
_CREDENTIALS = {
    "storage.s3.access_key": "AWS_ACCESS_KEY_ID", "storage.s3.secret_key": "AWS_SECRET_ACCESS_KEY",
    "storage.gcs.credentials_file": "GOOGLE_APPLICATION_CREDENTIALS",
    "storage.azure.account_key": "AZURE_STORAGE_ACCOUNT_KEY", "storage.azure.sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "storage.azure.connection_string": "AZURE_STORAGE_CONNECTION_STRING",
}


class ConfigFileError(ValueError):
    """The file cannot be used; the message names the file, the key and what is expected."""


@dataclass
class FileSettings:
    """What a configuration file sets: argparse dest -> value, and the key each came from."""

    path: Path
    values: dict[str, Any]
    keys: dict[str, str]


def load(path: Path) -> FileSettings:
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigFileError(f"{path}: expected a mapping of keys (enabled, data_path, storage, server, ...) "
                              f"at the top, got {type(document).__name__}")
    settings = FileSettings(Path(path), {}, {})
    leaves = list(_leaves(document, ""))
    _check_storage_sections(Path(path), leaves)
    for dotted, value in leaves:
        _take(settings, dotted, value)
    return settings


def _check_storage_sections(path: Path, leaves: list[tuple[str, Any]]) -> None:
    """One storage section, the one storage.type names: the seed lists a section per backend,
    and a file that keeps another backend's section would have it silently ignored (or mixed in)."""
    given = dict(leaves)
    sections = sorted({k.split(".")[1] for k in given if k.startswith("storage.") and k.count(".") >= 2})
    kind = given.get("storage.type")
    if kind is not None:
        for section in sections:
            if section != kind:
                raise ConfigFileError(f"{path}: storage.{section} is given but storage.type is {kind!r}: remove the "
                                      f"{section} section, or set storage.type: {section}")
    elif len(sections) > 1:
        raise ConfigFileError(f"{path}: storage has sections {' and '.join(sections)}: set storage.type to the one "
                              "to use and remove the others")


def _leaves(node: dict, prefix: str):
    """(dotted key, value) of every setting; a mapping is a section only where KEYS has one."""
    for name, value in node.items():
        dotted = f"{prefix}{name}"
        if dotted not in _BY_PATH and isinstance(value, dict):
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _take(settings: FileSettings, dotted: str, value: Any) -> None:
    path = settings.path
    if dotted in _CREDENTIALS:
        raise ConfigFileError(f"{path}: {dotted}: credentials are not read from the configuration file (it gets "
                              f"copied, shown and committed): set {_CREDENTIALS[dotted]} in the server's "
                              "environment and remove the key")
    key = _BY_PATH.get(dotted)
    if key is None:
        close = difflib.get_close_matches(dotted, list(_BY_PATH), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigFileError(f"{path}: unknown key {dotted}: {hint}the keys are listed in docs/configuration.md")
    if value is None:
        return  # `key:` with nothing after it: as if it were absent
    try:
        parsed = key.parse(value)
    except ValueError as exc:
        raise ConfigFileError(f"{path}: {dotted}: expected {exc}, got {value!r}") from None
    if key.dest in settings.values and settings.values[key.dest] != parsed:
        raise ConfigFileError(f"{path}: {dotted} and {settings.keys[key.dest]} set the same thing differently: "
                              "keep one")
    settings.values[key.dest] = parsed
    settings.keys[key.dest] = dotted


def apply(settings: FileSettings, parser: argparse.ArgumentParser, args: argparse.Namespace,
          argv: list[str]) -> None:
    """Put the file's values into `args` where neither a flag in `argv` nor its environment
    variable set one: file < environment < command line."""
    actions = {action.dest: action for action in parser._actions}
    for dest, value in settings.values.items():
        action = actions[dest]
        if action.choices and value not in action.choices:
            raise ConfigFileError(f"{settings.path}: {settings.keys[dest]}: expected one of "
                                  f"{', '.join(map(str, action.choices))}, got {value!r}")
        if _on_command_line(action, argv) or os.environ.get(env_name(action)):  # an empty variable: unset
            continue
        setattr(args, dest, value)


def _on_command_line(action: argparse.Action, argv: list[str]) -> bool:
    return any(token == option or token.startswith(option + "=")
               for token in argv for option in action.option_strings)


def env_name(action: argparse.Action) -> str:
    """The FORGE_TRAINING_* variable of a serve flag: its name, plural for repeatable ones
    (tests/unit/server/test_config_file.py holds every key's to the variable its flag reads)."""
    name = action.option_strings[-1].lstrip("-").replace("-", "_").upper()
    return ENV_PREFIX + (name + "S" if isinstance(action, argparse._AppendAction) else name)


def explain(message: str, settings: FileSettings | None, parser: argparse.ArgumentParser) -> str:
    """A flag's error, naming the file's key too when the file set that flag."""
    if settings is None:
        return message
    for action in parser._actions:
        key = settings.keys.get(action.dest)
        if key and any(re.search(re.escape(option) + r"\b", message) for option in action.option_strings):
            message += f" (set by {key} in {settings.path})"
    return message


def effective(config, args: argparse.Namespace) -> dict[str, Any]:
    """The effective configuration in the file's own shape, secrets masked: `config show`."""
    storage = config.storage
    section = {"local": {"base_path": storage.base_path},
               "s3": {"bucket": storage.bucket, "prefix": storage.prefix, "region": storage.region,
                      "endpoint_url": masked_url(storage.endpoint_url)},
               "gcs": {"bucket": storage.bucket, "prefix": storage.prefix, "project_id": storage.project,
                       "endpoint_url": masked_url(storage.endpoint_url)},
               "azure": {"container": storage.bucket, "prefix": storage.prefix,
                         "account_name": storage.account}}[storage.type]
    tls = {"cert": config.tls_cert, "key": config.tls_key, "client_ca": config.tls_client_ca}
    shown = {
        "enabled": config.training_enabled,
        "data_path": str(config.data_dir),
        "checkpoint_path": str(config.checkpoint_dir or Path(config.data_dir) / "checkpoints"),
        "model_path": storage.base_path or str(config.data_dir) if storage.type == "local" else None,
        "max_concurrent_jobs": config.max_concurrent_jobs,
        "default_resources": {"cpu": config.default_job_cpu or None,
                              "memory": args.default_job_memory or None,
                              "gpu": config.default_job_gpu,
                              "timeout": f"{config.default_job_timeout_seconds:g}s"
                              if config.default_job_timeout_seconds else None,
                              "priority": config.default_job_priority},
        "storage": {"type": storage.type, storage.type: section,
                    **({"credentials": _credentials(storage.type)} if storage.type != "local" else {})},
        "server": {
            "address": config.address,
            "database_url": masked_url(config.database_url) if config.database_url
            else f"sqlite:///{Path(config.data_dir).resolve() / 'forge.db'}",
            "executor": config.executor,
            "ray_address": config.ray_address or None,
            "warm_workers": config.warm_workers,
            "shutdown_grace": f"{config.shutdown_grace_seconds:g}s",
            "insecure": args.insecure,
            "auth": config.auth,
            "tls": {k: str(v) for k, v in tls.items() if v} or None,
            "data_roots": list(config.data_roots) if config.data_roots is not None else "anywhere",
            "model_roots": list(config.load_policy.extra_roots),
            "pipeline_functions": sorted(config.pipeline_functions),
            "callbacks": dict(config.callbacks),
            "allow_untrusted_pickles": config.load_policy.allow_untrusted_pickles,
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_message_bytes": config.max_message_bytes,
                       "max_streams_per_key": config.max_streams_per_key,
                       "max_columns": config.ingest_limits.max_columns,
                       "max_record_bytes": config.ingest_limits.max_record_bytes,
                       "max_expanded_bytes": config.ingest_limits.max_expanded_bytes},
            "alerts": {"retry_seconds": config.alert_retry_seconds, "max_attempts": config.alert_max_attempts,
                       "private_webhooks": config.engine_settings().alert_private_webhooks},
            "webhook_address": config.webhook_address or None,
            "observability": {"log_level": config.log_level, "log_format": config.log_format,
                              "metrics_address": config.metrics_address or None, "tracing": config.tracing,
                              "tracing_endpoint": masked_url(config.tracing_endpoint) or None},
        },
    }
    return shown


# The environment variables each store reads its credentials from; shown as set or not, never their values.
CREDENTIAL_VARIABLES = {
    "local": (),
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"),
    "gcs": ("GOOGLE_APPLICATION_CREDENTIALS",),
    "azure": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"),
}


def _credentials(storage_type: str) -> dict[str, str] | None:
    names = CREDENTIAL_VARIABLES[storage_type]
    return {name: "**** (set)" if os.environ.get(name) else "(not set)" for name in names} or None
