"""`forge-training tuning`: start a hyperparameter search from YAML, list, show, watch, cancel."""

from __future__ import annotations

import json

from forge.training.cli import exit_codes, specs
from forge.training.cli.arguments import add_command, add_group, add_limit, limited
from forge.training.cli.output import enum_name, fields, number, print_json, state, table, timestamp
from forge.training.client import struct_to_dict
from forge.training.v1 import tuning_job_pb2


def register(commands, common) -> None:
    actions = add_group(commands, "tuning", "hyperparameter searches: every trial is an ordinary training job")

    start = add_command(actions, "start", common, run_start,
                        "start a search from a YAML or JSON file: a TuningSpec in its JSON form",
                        "forge-training tuning start search.yaml --id alpha-search --watch")
    start.add_argument("spec", metavar="SPEC_FILE")
    start.add_argument("--id", default="", dest="tuning_id", help="the tuning job id (default: generated)")
    start.add_argument("--watch", action="store_true", help="then watch it as `tuning watch` does")

    listing = add_command(actions, "list", common, run_list, "list tuning jobs, newest first",
                          "forge-training tuning list --state running")
    listing.add_argument("--state", default="", help="only tuning jobs in this state")
    add_limit(listing)

    show = add_command(actions, "show", common, run_show, "a tuning job with every trial and the best one",
                       "forge-training tuning show alpha-search")
    show.add_argument("tuning_job", metavar="TUNING_JOB")

    watch = add_command(actions, "watch", common, run_watch,
                        "follow a search's trials until it ends: exit 0 when it completes, 1 otherwise",
                        "forge-training tuning watch alpha-search")
    watch.add_argument("tuning_job", metavar="TUNING_JOB")
    watch.add_argument("--from-sequence", type=int, default=0, metavar="N", help="only events after sequence N")

    cancel = add_command(actions, "cancel", common, run_cancel, "cancel a search and its running trials",
                         "forge-training tuning cancel alpha-search")
    cancel.add_argument("tuning_job", metavar="TUNING_JOB")


def run_start(args, client) -> int:
    spec = specs.load(args.spec, tuning_job_pb2.TuningSpec)
    tuning = client.start_tuning(spec, tuning_job_id=args.tuning_id)
    if args.output == "json":
        print_json(tuning, lines=args.watch)
    else:
        print(f"{tuning.name} {state(tuning.state)}")
    if args.watch:
        return watch(client, tuning.name, output=args.output)
    return exit_codes.OK


def run_watch(args, client) -> int:
    return watch(client, args.tuning_job, output=args.output, from_sequence=args.from_sequence)


def watch(client, name: str, *, output: str, from_sequence: int = 0) -> int:
    """One line per event (trial started, completed, pruned, failed, new best) until the search
    ends, then the best trial. JSON output: one event per line, then the final tuning job."""
    for event in client.watch_tuning(name, from_sequence=from_sequence):
        if output == "json":
            print_json(event, lines=True)
        else:
            print(_event_line(event), flush=True)
    final = client.get_tuning_job(name)
    if output == "json":
        print_json(final, lines=True)
    else:
        print(_best(final))
    return exit_codes.for_outcome("tuning job", final.name, final.state, final.error.message or final.state_message)


def _parameters(trial: tuning_job_pb2.Trial) -> str:
    return " ".join(f"{path.rsplit('.', 1)[-1]}={json.dumps(value)}"
                    for path, value in struct_to_dict(trial.parameters).items())


def _event_line(event: tuning_job_pb2.TuningEvent) -> str:
    """`trial 3 started alpha=0.01`, `trial 3 pruned objective 0.61: ...`, `new best: trial 3 ...`."""
    trial, kind = event.trial, event.kind
    if kind.startswith("trial_") and trial.id:
        text = f"trial {trial.id} {kind.removeprefix('trial_').replace('_', ' ')}"
    elif kind == "new_best" and trial.id:
        text = f"new best: trial {trial.id}"
    else:
        text = kind.replace("_", " ")
    if kind == "trial_started":
        text += f" {_parameters(trial)}"
    elif trial.HasField("objective_value"):
        text += f" objective {number(trial.objective_value)}"
    if trial.state_message and kind in ("trial_pruned", "trial_failed"):
        text += f": {trial.state_message}"
    return f"{timestamp(event.time)} {text}"


def _best(tuning: tuning_job_pb2.TuningJob) -> str:
    text = f"{tuning.name} {state(tuning.state)}"
    if tuning.state_message:
        text += f" ({tuning.state_message})"
    best = tuning.best_trial
    if best.id:
        text += (f"; best trial {best.id}: {tuning.spec.objective_metric} {number(best.objective_value)} with "
                 f"{_parameters(best)}, model version {best.model_version or '-'}")
    return text


def run_list(args, client) -> int:
    found = limited(client.list_tuning_jobs(f"state={args.state.strip().upper()}" if args.state else ""),
                    args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[t.name, state(t.state), len(t.trials), t.spec.objective_metric,
             t.best_trial.objective_value if t.best_trial.HasField("objective_value") else None,
             timestamp(t.create_time)] for t in found]
    print(table(["NAME", "STATE", "TRIALS", "OBJECTIVE", "BEST", "CREATED"], rows))
    return exit_codes.OK


def run_show(args, client) -> int:
    tuning = client.get_tuning_job(args.tuning_job)
    if args.output == "json":
        print_json(tuning)
        return exit_codes.OK
    spec = tuning.spec
    print(fields([
        ("name", tuning.name), ("state", state(tuning.state)), ("state message", tuning.state_message),
        ("error", tuning.error.message),
        ("algorithm", enum_name(tuning_job_pb2.SearchAlgorithm, spec.algorithm).lower() if spec.algorithm else "-"),
        ("objective", f"{spec.objective_metric} ({enum_name(tuning_job_pb2.ObjectiveGoal, spec.goal).lower()})"),
        ("best trial", tuning.best_trial_id), ("created", timestamp(tuning.create_time)),
        ("ended", timestamp(tuning.end_time)),
    ]))
    rows = [[t.id, state(t.state), t.objective_value if t.HasField("objective_value") else None, t.epochs_trained,
             _parameters(t), t.training_job] for t in tuning.trials]
    print()
    print(table(["TRIAL", "STATE", "OBJECTIVE", "EPOCHS", "PARAMETERS", "TRAINING JOB"], rows))
    return exit_codes.OK


def run_cancel(args, client) -> int:
    tuning = client.cancel_tuning(args.tuning_job)
    if args.output == "json":
        print_json(tuning)
    else:
        print(f"{tuning.name} {state(tuning.state)}")
    return exit_codes.OK
