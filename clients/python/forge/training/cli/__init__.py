"""The `forge-training` command line: datasets, training jobs, export, models, pipelines, tuning
and plots, over the SDK's Client. The server package adds `serve`, `keys` and `migrate` through
the `forge_training.commands` entry-point group when it is installed (see server_commands.py).

    from forge.training.cli import main
    main(["jobs", "list", "--output", "json"])  # returns the exit code

docs/cli.md describes every command, the spec files and the exit codes.
"""

from forge.training.cli.main import main

__all__ = ["main"]
