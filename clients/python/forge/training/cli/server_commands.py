"""Commands another installed package adds: the server registers `serve`, `keys`, `migrate` and `config` in
the `forge_training.commands` entry-point group, each a function taking the whole argv
(`[name, *rest]`). Nothing of the server is imported unless one of its commands runs."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

GROUP = "forge_training.commands"


def available() -> dict[str, EntryPoint]:
    """The commands installed packages offer, by name."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def run(entry: EntryPoint, argv: list[str]) -> int:
    """Runs the command `argv[0]` with the rest of argv; its return value is the exit code."""
    function = entry.load()
    return int(function(argv) or 0)
