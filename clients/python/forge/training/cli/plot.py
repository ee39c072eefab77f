"""`forge-training plot JOB -o curves.png`: a job's loss and metric curves per epoch, with
matplotlib (the SDK's optional `plot` extra)."""

from __future__ import annotations

from pathlib import Path

from forge.training.cli import exit_codes
from forge.training.cli.arguments import add_command
from forge.training.cli.exit_codes import CommandError
from forge.training.cli.output import print_json, state

LOSSES = ("training_loss", "validation_loss")
SCORES = ("accuracy", "precision", "recall", "f1_score", "r2")
ERRORS = ("rmse", "mae")
INSTALL = "pip install 'forge-training-client[plot]'"


def register(commands, common) -> None:
    parser = add_command(commands, "plot", common, run_plot,
                         "draw a job's loss and metric curves into an image (png, svg or pdf by the file name)",
                         "forge-training plot cancer-sgd -o curves.png")
    parser.add_argument("job", metavar="JOB")
    parser.add_argument("-o", "--output-file", required=True, metavar="FILE", help="the image to write")


def run_plot(args, client) -> int:
    try:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise CommandError(f"plot needs matplotlib, which is not installed: {INSTALL}") from None
    job = client.get_job(args.job)
    points = client.metric_history(job.name)
    if not points:
        raise CommandError(f"job {job.name} has no metric points yet ({state(job.state)}): plot it after its "
                           "first epoch", exit_codes.CONFLICT)
    epochs = [p.epoch for p in points]
    panels = [(title, [(name, [getattr(p, name) if p.HasField(name) else float("nan") for p in points])
                       for name in names if any(p.HasField(name) for p in points)])
              for title, names in (("loss", LOSSES), ("score", SCORES), ("error", ERRORS))]
    panels = [(title, series) for title, series in panels if series]
    figure = Figure(figsize=(6.4, 3.2 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, series) in zip(axes, panels):
        for name, values in series:
            ax.plot(epochs, values, marker="o" if len(epochs) < 30 else None, label=name.replace("_", " "))
        ax.set_ylabel(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers on every panel
    axes[-1].set_xlabel("epoch")
    figure.suptitle(job.name)
    target = Path(args.output_file)
    try:
        figure.savefig(target)
    except ValueError as exc:  # an extension matplotlib cannot write
        raise CommandError(f"{target}: {exc}") from None
    if args.output == "json":
        print_json({"path": str(target), "job": job.name, "epochs": len(points),
                    "series": [name for _, series in panels for name, _ in series]})
    else:
        print(f"wrote {target}: {len(points)} epochs of {job.name}")
    return exit_codes.OK
