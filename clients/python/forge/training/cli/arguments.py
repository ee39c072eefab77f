"""Pieces every command module uses to declare its sub-commands."""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

from forge.training.cli.exit_codes import CommandError


def add_command(actions: Any, name: str, common: argparse.ArgumentParser, run: Callable[..., int],
                help: str, example: str = "") -> argparse.ArgumentParser:
    """A sub-command with the connection and --output options; `run(args, client)` runs it."""
    epilog = f"example:\n  {example}" if example else None
    parser = actions.add_parser(name, parents=[common], help=help, description=help, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)
    return parser


def add_group(commands: Any, name: str, help: str) -> Any:
    """A command with sub-commands (`forge-training jobs ACTION`)."""
    group = commands.add_parser(name, help=help, description=help)
    return group.add_subparsers(dest="action", metavar="ACTION", required=True)


def add_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="show at most N (default: all)")


def limited(items: Iterable[Any], limit: int) -> list[Any]:
    return list(itertools.islice(items, limit) if limit > 0 else items)


def key_values(pairs: list[str] | None, flag: str, *, as_text: bool = False) -> dict[str, Any]:
    """`key=value` pairs as a dict; values are JSON where they parse (0.9, true, [1, 2]), else
    text; with `as_text`, always text (labels)."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"{flag} {pair!r}: write it as KEY=VALUE")
        if as_text:
            result[key] = text
            continue
        try:
            result[key] = json.loads(text)
        except json.JSONDecodeError:
            result[key] = text
    return result


def ratios(values: list[str]) -> list[float]:
    """0.7 0.15 0.15, or 0.7,0.15,0.15."""
    parsed = []
    for text in (part for value in values for part in value.split(",") if part.strip()):
        try:
            parsed.append(float(text))
        except ValueError:
            raise CommandError(f"--ratios: {text!r} is not a number; write e.g. --ratios 0.7,0.15,0.15") from None
    return parsed
