"""`forge-training`: parses the command line, runs one command, maps failures to exit codes.

Every command module has register(commands, common): it adds its sub-commands, each with
`run(args, client) -> exit code` as its default. Failures become one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

import grpc

from forge.training import __version__
from forge.training.cli import alerts, connect, datasets, exit_codes, export, jobs, models, pipelines, plot, \
    server_commands, tuning
from forge.training.cli.exit_codes import CommandError
from forge.training.errors import ForgeTrainingError

PROG = "forge-training"
_COMMAND_MODULES = (datasets, jobs, export, models, pipelines, tuning, plot, alerts)

_EPILOG = """\
exit codes: 0 ok; 1 the job, execution or tuning job ended FAILED or CANCELLED, or a dataset
failed validation; 2 bad command line, spec file or argument; 3 not found; 4 unauthenticated or
not allowed; 5 server unreachable; 6 wrong state or already exists; 7 other server error;
130 interrupted. docs/cli.md has every command with an example."""


class Parser(argparse.ArgumentParser):
    """argparse with errors as one line (main prints them) instead of usage text and exit."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--out` must not silently mean `--output`
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see `{self.prog} --help`)")


def build_parser(offered: dict) -> Parser:
    parser = Parser(prog=PROG, description="Train models on a forge-training server: datasets, jobs, export, "
                                           "models, pipelines and tuning.",
                    epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    connect.add_arguments(parser)
    common = Parser(add_help=False)
    connect.add_arguments(common)
    common.add_argument("--output", choices=("text", "json"), default="text",
                        help="text for people (default) or json: the proto's JSON form, JSON Lines for streams")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMAND_MODULES:
        module.register(commands, common)
    for name in sorted(offered):
        # Listed for --help; main() runs them before parsing. No prefix characters: whatever
        # follows (--help included) is the server command's to parse.
        server = commands.add_parser(name, add_help=False, prefix_chars="\0",
                                     help=f"a command of the installed server (`{PROG} {name} --help`)")
        server.add_argument("rest", nargs="*")
        server.set_defaults(server_command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code (docs/cli.md)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    offered = server_commands.available()
    if argv and argv[0] in offered:
        # The server's command behaves exactly as on its own: its parser (--help included), its
        # messages and its exit codes.
        return server_commands.run(offered[argv[0]], argv)
    return _run_client_command(argv, offered)


def _run_client_command(argv: list[str], offered: dict) -> int:
    args = None
    try:
        args = build_parser(offered).parse_args(argv)
        if getattr(args, "server_command", None):  # options came before it: they are the client's
            name = args.server_command
            raise CommandError(f"the connection options are for client commands; run `{PROG} {name} ...` "
                               f"with {name}'s own options (see `{PROG} {name} --help`)")
        with connect.open_client(args) as client:
            return int(args.run(args, client) or 0)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else exit_codes.OK
    except CommandError as exc:
        _error(str(exc))
        return exc.code
    except ForgeTrainingError as exc:
        _error(_describe(exc, args))
        return exit_codes.for_status(exc.code)
    except TimeoutError as exc:
        _error(str(exc))
        return exit_codes.UNAVAILABLE
    except ValueError as exc:  # the SDK's checks of an argument, e.g. an unknown export format
        _error(str(exc))
        return exit_codes.USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:  # `forge-training jobs list | head`: the reader left; nothing to say
        _silence_stdout()
        return exit_codes.OK
    except OSError as exc:  # a file this command reads or writes
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return exit_codes.USAGE


def _describe(exc: ForgeTrainingError, args: argparse.Namespace | None) -> str:
    """The SDK's one-line error, with what to do when the cause is the connection."""
    text = str(exc)
    # A status the server sent (e.g. training disabled there) says all; only a connection failure needs the hint.
    if exc.code == grpc.StatusCode.UNAVAILABLE and exc.status is None and args is not None:
        return (f"{text} (is a forge-training server running at {connect.target(args)}? pass --target HOST:PORT "
                f"or set {connect.TARGET_ENV})")
    if exc.code == grpc.StatusCode.UNAUTHENTICATED:
        return f"{text} (pass --api-key or set FORGE_TRAINING_API_KEY)"
    return text


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
