"""Generate docs/configuration.md: every flag and environment variable of `forge-training`.

    .venv/bin/python tools/gen_config_docs.py            # rewrite docs/configuration.md
    .venv/bin/python tools/gen_config_docs.py --check    # exit 1 when it is stale

The tables come from the argparse parser that `forge-training` itself builds (server/main.py
with server/config.py and the keys and migrate commands), so a new flag appears here once
the page is regenerated. The environment variable of each flag is not read from its help
text: the generator sets each candidate variable (FORGE_TRAINING_ + the flag's name, or its
plural for repeatable flags), builds the parser again and keeps the variable that changed
the flag's default, so the page lists only variables that work.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"
PREFIX = "FORGE_TRAINING_"

# Variables read by code other than the flag parser; each row says who reads it.
OTHER_VARIABLES = (
    ("FORGE_TRAINING_API_KEY", "the Python SDK (`forge.training.Client`)",
     "The API key sent as `authorization: Bearer <key>` when `Client(api_key=...)` is not given."),
    ("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE", "the server, `--storage-type s3`",
     "Credentials of the S3 artifact store (and of s3:// dataset URIs), read by the AWS SDK; never flags."),
    ("GOOGLE_APPLICATION_CREDENTIALS", "the server, `--storage-type gcs`",
     "A service-account key file for the GCS artifact store (and gs:// dataset URIs); never flags."),
    ("AZURE_STORAGE_CONNECTION_STRING", "the server, `--storage-type azure`",
     "The Blob Storage account's connection string: its account, key and endpoint (an emulator such as Azurite "
     "is named by its BlobEndpoint); never flags."),
    ("AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN", "the server, "
     "`--storage-type azure`", "Without a connection string: the account (or `--storage-account`) and its key or "
     "a SAS token; without either, Azure's default credential chain (a managed identity, a service principal "
     "in AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET)."),
)


def build_parser() -> argparse.ArgumentParser:
    """The parser `forge-training` builds for the server's commands."""
    from server import main as server_main

    return server_main.build_parser()


@contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """os.environ without any FORGE_TRAINING_* variable of this shell, plus `extra`."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith(PREFIX)]:
            del os.environ[key]
        os.environ.update(extra)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for the parser and every sub-parser, depth first, in declaration order."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


SWITCHES = (argparse._StoreTrueAction, argparse._StoreFalseAction)
EXAMPLE = ROOT / "examples" / "forge.yaml"


def _probe_value(action: argparse.Action) -> str:
    """A value for a candidate variable that would change this flag's default if it read it."""
    if isinstance(action, SWITCHES):
        return "1"
    if action.choices:
        return next(str(c) for c in action.choices if c != action.default)
    return "7"  # parses as an int, a float, a path or text alike


def _find(parser: argparse.ArgumentParser, path: tuple[str, ...], dest: str) -> argparse.Action:
    command = dict(subcommands(parser))[path]
    return next(a for a in options(command) if a.dest == dest)


@dataclass
class Variable:
    name: str
    comma_separated: bool = False


@functools.cache  # asked again for each configuration-file key: each probe builds the parser twice
def environment_variable(path: tuple[str, ...], action: argparse.Action) -> Variable | None:
    """The FORGE_TRAINING_* variable that sets this flag's default, found by setting it."""
    if not action.option_strings:
        return None
    stem = PREFIX + action.option_strings[-1].lstrip("-").upper().replace("-", "_")
    with environment({}):
        baseline = _find(build_parser(), path, action.dest).default
    for name in (stem, stem + "S"):
        with environment({name: _probe_value(action)}):
            try:
                probed = _find(build_parser(), path, action.dest).default
            except (SystemExit, ValueError):
                return Variable(name)  # the parser checks the variable's value: it reads it
        if probed != baseline:
            comma = False
            if isinstance(action, argparse._AppendAction):
                with environment({name: "7,8"}):
                    comma = len(_find(build_parser(), path, action.dest).default or []) == 2
            return Variable(name, comma)
    return None


# ----- rendering


def _default(action: argparse.Action) -> str:
    value = action.default
    if action.required:
        return "required"
    if isinstance(action, SWITCHES):
        return "off" if value == isinstance(action, argparse._StoreFalseAction) else "on"
    if value is None or value == "" or value == []:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _value(action: argparse.Action) -> str:
    if isinstance(action, SWITCHES):
        return "switch"
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    if action.metavar:
        return f"`{action.metavar}`"
    kinds = {int: "integer", float: "number", Path: "path"}
    kind = kinds.get(action.type, "text")
    return f"{kind}, repeatable" if isinstance(action, argparse._AppendAction) else kind


def _help(parser: argparse.ArgumentParser, action: argparse.Action, variable: Variable | None) -> str:
    """The flag's help with %(default)s expanded, minus a trailing "(env X; default Y)" that the
    table's columns already say."""
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    text = " ".join(text.split())

    def redundant(match: re.Match) -> str:
        parts = [p.strip() for p in match.group(1).split(";")]
        names = {variable.name, variable.name + "=1"} if variable else set()
        keep = [p for p in parts if not p.startswith("default ") and not any(
            p == f"env {name}" or p == f"env {name}, comma-separated" for name in names)]
        return f" ({'; '.join(keep)})" if keep else ""

    text = re.sub(r"\s*\(([^()]*)\)$", redundant, text)
    return (text.replace("|", "\\|").replace("<", "&lt;")) or "–"


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}` (positional)"
    return ", ".join(f"`{o}`" for o in action.option_strings)


def _environment_cell(action: argparse.Action, variable: Variable | None) -> str:
    if variable is None:
        return "–"
    if isinstance(action, SWITCHES):
        return f"`{variable.name}=1`"
    return f"`{variable.name}`" + (" (comma-separated)" if variable.comma_separated else "")


def render_command(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    command = " ".join(("forge-training", *path))
    lines = [f"{'#' * min(len(path) + 1, 4)} `{command}`", ""]
    if parser.description:
        lines += [" ".join(parser.description.split()), ""]
    groups = [g for g in parser._action_groups if options_in(g)]
    for group in groups:
        if len(groups) > 1 or group.title not in ("options", "positional arguments"):
            lines += [f"**{group.title[0].upper() + group.title[1:]}**" + (
                f": {' '.join(group.description.split())}" if group.description else ""), ""]
        lines += ["| Flag | Value | Environment | Default | Description |", "| --- | --- | --- | --- | --- |"]
        for action in options_in(group):
            variable = environment_variable(path, action)
            lines.append(f"| {_flag(action)} | {_value(action)} | {_environment_cell(action, variable)} "
                         f"| {_default(action)} | {_help(parser, action, variable)} |")
        lines.append("")
    return lines


def render_config_file(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    """The configuration file: an example and every key with the flag it stands for."""
    from server import config_file

    lines = [
        "### The configuration file", "",
        "`forge-training serve --config FILE` (or `FORGE_TRAINING_CONFIG`) reads a YAML file whose top level "
        "mirrors the seed's `TrainingConfiguration`; the service's own settings sit under `server:`. Each key "
        "stands for one flag: the flag's environment variable overrides the file, and the flag on the command "
        "line overrides both. The effective values are checked at start like flags; an error names the key, "
        "the file and the value expected. Relative paths are relative to the directory the server starts in. "
        "Credentials are never read from the file: each object store reads its own from the environment "
        "(the last table of this page). `forge-training config show` prints the effective configuration "
        "with secrets masked.", "",
        f"An example ([{EXAMPLE.relative_to(ROOT)}](../{EXAMPLE.relative_to(ROOT)})):", "",
        "```yaml", EXAMPLE.read_text().rstrip("\n"), "```", "",
        "| Key | Flag | Environment |", "| --- | --- | --- |",
    ]
    actions = {a.dest: a for a in options(parser)}
    for key in config_file.KEYS:
        action = actions[key.dest]
        variable = environment_variable(path, action)
        lines.append(f"| `{key.path}` | {_flag(action)} | {_environment_cell(action, variable)} |")
    return lines + [""]


def options_in(group: argparse._ArgumentGroup) -> list[argparse.Action]:
    return [a for a in group._group_actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def generate() -> str:
    with environment({}):
        parser = build_parser()
    lines = [
        "# Configuration",
        "",
        "Every flag of `forge-training` and the environment variable that sets it, generated by "
        "`tools/gen_config_docs.py` from the command's own parser (`server/config.py`, `server/main.py`); "
        "run it again after changing a flag. A flag on the command line wins over its environment variable; "
        "a switch's variable turns it on with `1` or `true`. Defaults are those of an empty environment.",
        "",
        "How to run a server with these settings (PostgreSQL, S3, TLS, API keys, Docker) is in "
        "[operations.md](operations.md).",
        "",
    ]
    for path, command in subcommands(parser):
        if not path:
            continue
        if not options(command) and command._subparsers is not None:
            continue
        if path == ("config", "show"):  # serve's flags again: not repeated here
            lines += ["### `forge-training config show`", "", " ".join(command.description.split()), ""]
            continue
        lines += render_command(path, command)
        if path == ("serve",):
            lines += render_config_file(path, command)
    lines += ["## Other environment variables", "", "| Variable | Read by | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{'`, `'.join(n.split(', '))}` | {who} | {what} |"
              for n, who, what in OTHER_VARIABLES]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the page is stale")
    parser.add_argument("--out", type=Path, default=OUT, help="default %(default)s")
    args = parser.parse_args(argv)
    text = generate()
    current = args.out.read_text() if args.out.is_file() else None
    if args.check:
        if current != text:
            shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
            print(f"{shown} is stale: run `.venv/bin/python tools/gen_config_docs.py`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
