"""`forge-training jobs`: start from a spec file, list, show, watch, logs, metrics, pause, resume, cancel."""

from __future__ import annotations

import sys
from pathlib import Path

from forge.training.cli import exit_codes, specs
from forge.training.cli.arguments import add_command, add_group, add_limit, limited
from forge.training.cli.output import enum_name, fields, number, print_json, state, table, timestamp
from forge.training.cli.progress import EpochProgress, present_metrics
from forge.training.client import FINAL_STATES, log_level
from forge.training.v1 import common_pb2, training_job_pb2

COMPLETED = common_pb2.JobState.JOB_STATE_COMPLETED


def register(commands, common) -> None:
    actions = add_group(commands, "jobs", "start, list, show, watch, log, pause, resume and cancel training jobs")

    start = add_command(actions, "start", common, run_start,
                        "start a job from a YAML or JSON file: a TrainingRequest in its JSON form",
                        "forge-training jobs start job.yaml --id cancer-sgd --watch")
    start.add_argument("spec", metavar="SPEC_FILE")
    start.add_argument("--id", default="", dest="job_id", help="the job id (default: generated)")
    start.add_argument("--watch", action="store_true",
                       help="then watch it as `jobs watch` does (and exit as it does)")

    listing = add_command(actions, "list", common, run_list, "list training jobs, newest first",
                          "forge-training jobs list --state running")
    listing.add_argument("--state", default="", help="only jobs in this state (pending, running, completed, ...)")
    listing.add_argument("--filter", default="", help="a server filter: state=RUNNING AND framework=sklearn "
                                                      "AND label.team=fraud")
    add_limit(listing)

    show = add_command(actions, "show", common, run_show, "a job: state, progress, metrics, model version",
                       "forge-training jobs show cancer-sgd")
    show.add_argument("job", metavar="JOB")

    watch = add_command(actions, "watch", common, run_watch,
                        "follow a job's epochs until it ends: exit 0 when it completes, 1 when it fails or is "
                        "cancelled", "forge-training jobs watch cancer-sgd")
    watch.add_argument("job", metavar="JOB")
    watch.add_argument("--from-sequence", type=int, default=0, metavar="N", help="only epochs after sequence N")

    logs = add_command(actions, "logs", common, run_logs, "a job's log (with -f, until the job ends)",
                       "forge-training jobs logs cancer-sgd -f --level warning")
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new entries until the job ends")
    logs.add_argument("--level", default=None, help="the lowest level shown: debug, info, warning or error")
    logs.add_argument("--contains", default="", metavar="TEXT", help="only entries containing TEXT")
    logs.add_argument("--from-sequence", type=int, default=0, metavar="N", help="only entries after sequence N")

    metrics = add_command(actions, "metrics", common, run_metrics,
                          "a job's whole metric history as a JSON or CSV document (stdout, or -o FILE)",
                          "forge-training jobs metrics cancer-sgd --format csv -o cancer-sgd.csv")
    metrics.add_argument("job", metavar="JOB")
    metrics.add_argument("--format", default="json", choices=("json", "csv"), help="the document (default: json)")
    metrics.add_argument("-o", "--output-file", default="", metavar="FILE", help="write it here instead of stdout")

    for name, run, help in (("pause", run_pause, "pause a job after its current epoch (it checkpoints)"),
                            ("resume", run_resume, "resume a paused job from its checkpoint"),
                            ("cancel", run_cancel, "cancel a job, keeping what it recorded")):
        parser = add_command(actions, name, common, run, help, f"forge-training jobs {name} cancer-sgd")
        parser.add_argument("job", metavar="JOB")
        if name != "resume":
            parser.add_argument("--wait", action="store_true",
                                help="return once the job is " + ("PAUSED" if name == "pause" else "CANCELLED"))


def run_start(args, client) -> int:
    request = specs.load(args.spec, training_job_pb2.TrainingRequest)
    job = client.start_training(request, training_job_id=args.job_id)
    if args.output == "json":
        print_json(job, lines=args.watch)
    else:
        print(f"{job.name} {state(job.state)}")
    if args.watch:
        return watch(client, job.name, output=args.output)
    return exit_codes.OK


def run_watch(args, client) -> int:
    return watch(client, args.job, output=args.output, from_sequence=args.from_sequence)


def watch(client, name: str, *, output: str, from_sequence: int = 0) -> int:
    """Shows the job's epochs as they end, then how it ended. JSON output: one metric point per
    line, then the final job."""
    job = client.get_job(name)
    if output == "json":
        for point in client.watch_metrics(job.name, from_sequence=from_sequence):
            print_json(point, lines=True)
        final = client.get_job(job.name)
        print_json(final, lines=True)
    else:
        display = EpochProgress(sys.stdout, job.name)
        if job.state not in FINAL_STATES:
            display.waiting(state(job.state))
        for point in client.watch_metrics(job.name, from_sequence=from_sequence):
            display.add(point)
        final = client.get_job(job.name)
        print(summary(final))
    return outcome(final)


def summary(job: training_job_pb2.TrainingJob) -> str:
    """How a job ended, in one line."""
    text = f"{job.name} {state(job.state)}"
    if job.state == COMPLETED:
        text += f" after epoch {job.current_epoch}"
        if job.test_metrics:
            text += "; test " + ", ".join(f"{k} {number(v)}" for k, v in sorted(job.test_metrics.items()))
        if job.model_version:
            text += f"; model version {job.model_version}"
    return text


def outcome(job: training_job_pb2.TrainingJob) -> int:
    return exit_codes.for_outcome("job", job.name, job.state, job.error.message or job.state_message)


def run_list(args, client) -> int:
    clauses = [f"state={args.state.strip().upper()}"] if args.state else []
    if args.filter:
        clauses.append(args.filter)
    found = limited(client.list_jobs(" AND ".join(clauses)), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[j.name, state(j.state), f"{j.current_epoch}/{j.total_epochs}",
             f"{j.spec.model_config.framework}/{j.spec.model_config.architecture}", timestamp(j.create_time)]
            for j in found]
    print(table(["NAME", "STATE", "EPOCH", "MODEL", "CREATED"], rows))
    return exit_codes.OK


def run_show(args, client) -> int:
    job = client.get_job(args.job)
    if args.output == "json":
        print_json(job)
        return exit_codes.OK
    spec = job.spec
    latest = job.latest_metrics
    print(fields([
        ("name", job.name), ("display name", spec.display_name), ("state", state(job.state)),
        ("state message", job.state_message), ("error", job.error.message),
        ("model", f"{enum_name(common_pb2.ModelType, spec.model_type).lower()}: "
                  f"{spec.model_config.framework}/{spec.model_config.architecture}"),
        ("train dataset", spec.data_config.train_dataset), ("validation dataset", spec.data_config.validation_dataset),
        ("test dataset", spec.data_config.test_dataset), ("label column", spec.data_config.label_column),
        ("epoch", f"{job.current_epoch}/{job.total_epochs}"), ("checkpoint epoch", job.checkpoint_epoch or None),
        ("latest metrics", ", ".join(f"{n} {number(getattr(latest, n))}" for n in present_metrics(latest))),
        ("test metrics", ", ".join(f"{k} {number(v)}" for k, v in sorted(job.test_metrics.items()))),
        ("cross-validation", _cross_validation(job.cross_validation)),
        ("model version", job.model_version),
        ("export formats", ", ".join(enum_name(common_pb2.ExportFormat, f).lower() for f in job.export_formats)),
        ("attempts", job.attempt_count or None), ("created", timestamp(job.create_time)),
        ("started", timestamp(job.start_time)), ("ended", timestamp(job.end_time)),
        ("tensorboard", job.tensorboard_log_dir),
    ]))
    return exit_codes.OK


def _cross_validation(result: training_job_pb2.CrossValidationResult) -> str | None:
    """`3 folds: accuracy 0.96 ± 0.01, ...; best fold 2 by validation_loss; final model: all_data`."""
    if not result.folds:
        return None
    shown = ", ".join(f"{k} {number(result.mean[k])} ± {number(result.std[k])}" for k in sorted(result.mean))
    return (f"{len(result.folds)} folds: {shown}; best fold {result.best_fold} by {result.metric}; final model: "
            f"{result.final_model}")


def run_logs(args, client) -> int:
    level = log_level(args.level)  # an unknown level is a ValueError naming the valid ones
    entries = client.stream_logs(args.job, follow=args.follow, min_level=level, contains=args.contains,
                                 from_sequence=args.from_sequence)
    for entry in entries:
        if args.output == "json":
            print_json(entry, lines=True)
        else:
            print(f"{timestamp(entry.time)} {enum_name(common_pb2.LogLevel, entry.level):<7} {entry.message}",
                  flush=args.follow)
    return exit_codes.OK


def run_metrics(args, client) -> int:
    document = client.export_metrics(args.job, args.format)
    if args.output_file:
        Path(args.output_file).write_bytes(document)
        print(f"wrote {args.output_file}: {args.format}, {len(document)} bytes", file=sys.stderr)
    else:
        sys.stdout.write(document.decode())  # JSON and CSV are UTF-8 text
    return exit_codes.OK


def run_pause(args, client) -> int:
    return _print_job(args, client.pause(args.job, wait=args.wait))


def run_resume(args, client) -> int:
    return _print_job(args, client.resume(args.job))


def run_cancel(args, client) -> int:
    return _print_job(args, client.cancel(args.job, wait=args.wait))


def _print_job(args, job: training_job_pb2.TrainingJob) -> int:
    if args.output == "json":
        print_json(job)
    else:
        print(f"{job.name} {state(job.state)}")
    return exit_codes.OK
