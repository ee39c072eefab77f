"""`forge-training pipelines`: create from YAML, list, show, execute, watch, executions, cancel."""

from __future__ import annotations

from forge.training.cli import exit_codes, specs
from forge.training.cli.arguments import add_command, add_group, add_limit, key_values, limited
from forge.training.cli.exit_codes import CommandError
from forge.training.cli.output import enum_name, number, print_json, state, table, timestamp
from forge.training.cli.progress import METRICS
from forge.training.client import struct_to_dict
from forge.training.v1 import common_pb2, pipeline_pb2

NOTE_WIDTH = 100


def register(commands, common) -> None:
    actions = add_group(commands, "pipelines", "create, execute and watch multi-stage pipelines")

    create = add_command(actions, "create", common, run_create,
                         "create a pipeline from a YAML or JSON file: a Pipeline in its JSON form",
                         "forge-training pipelines create pipeline.yaml --id nightly")
    create.add_argument("spec", metavar="SPEC_FILE")
    create.add_argument("--id", default="", dest="pipeline_id", help="the pipeline id (default: generated)")

    listing = add_command(actions, "list", common, run_list, "list pipelines", "forge-training pipelines list")
    add_limit(listing)

    show = add_command(actions, "show", common, run_show, "a pipeline's stages and schedule",
                       "forge-training pipelines show nightly")
    show.add_argument("pipeline", metavar="PIPELINE")

    execute = add_command(actions, "execute", common, run_execute,
                          "start an execution (stages may read ${input.KEY})",
                          "forge-training pipelines execute nightly --input threshold=0.9 --watch")
    execute.add_argument("pipeline", metavar="PIPELINE")
    execute.add_argument("--input", action="append", metavar="KEY=VALUE",
                         help="an input value (JSON where it parses, else text); repeatable")
    execute.add_argument("--input-file", metavar="FILE", help="the whole input as a YAML or JSON object")
    execute.add_argument("--id", default="", dest="execution_id", help="the execution id (default: generated)")
    execute.add_argument("--watch", action="store_true", help="then watch it as `pipelines watch` does")

    watch = add_command(actions, "watch", common, run_watch,
                        "follow an execution's events until it ends: exit 0 when it completes, 1 otherwise",
                        "forge-training pipelines watch projects/default/pipelines/nightly/executions/ID")
    watch.add_argument("execution", metavar="EXECUTION")
    watch.add_argument("--from-sequence", type=int, default=0, metavar="N", help="only events after sequence N")

    executions = add_command(actions, "executions", common, run_executions,
                             "list executions of a pipeline (or of every pipeline), newest first",
                             "forge-training pipelines executions nightly")
    executions.add_argument("pipeline", metavar="PIPELINE", nargs="?", default="")
    add_limit(executions)

    cancel = add_command(actions, "cancel", common, run_cancel, "cancel an execution",
                         "forge-training pipelines cancel projects/default/pipelines/nightly/executions/ID")
    cancel.add_argument("execution", metavar="EXECUTION")


def run_create(args, client) -> int:
    pipeline = specs.load(args.spec, pipeline_pb2.Pipeline)
    created = client.create_pipeline(pipeline, pipeline_id=args.pipeline_id)
    if args.output == "json":
        print_json(created)
    else:
        print(f"{created.name}: {len(created.stages)} stages")
    return exit_codes.OK


def run_list(args, client) -> int:
    found = limited(client.list_pipelines(), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[p.name, len(p.stages), _schedule(p), timestamp(p.create_time)] for p in found]
    print(table(["NAME", "STAGES", "SCHEDULE", "CREATED"], rows))
    return exit_codes.OK


def _schedule(pipeline: pipeline_pb2.Pipeline) -> str:
    schedule = pipeline.schedule
    if schedule.cron:
        text = f"cron {schedule.cron} {schedule.timezone or 'UTC'}"
    elif schedule.HasField("interval"):
        text = f"every {schedule.interval.ToTimedelta()}"
    else:
        return "-"
    return text + (" (paused)" if schedule.paused else "")


def run_show(args, client) -> int:
    pipeline = client.get_pipeline(args.pipeline)
    if args.output == "json":
        print_json(pipeline)
        return exit_codes.OK
    print(f"{pipeline.name}  schedule: {_schedule(pipeline)}")
    rows = [[s.id, enum_name(pipeline_pb2.StageType, s.type).lower(), ", ".join(s.dependencies) or None,
             s.condition or None] for s in pipeline.stages]
    print(table(["STAGE", "TYPE", "AFTER", "CONDITION"], rows))
    for trigger in pipeline.triggers:
        event = enum_name(pipeline_pb2.TriggerEvent, trigger.event).lower()
        labels = ", ".join(f"{k}={v}" for k, v in sorted(trigger.dataset_labels.items()))
        print(f"trigger {trigger.name}: {event}" + (f" with labels {labels}" if labels else "")
              + (" (paused)" if trigger.paused else ""))
    for alert in pipeline.alerts:
        states = ", ".join(enum_name(common_pb2.JobState, s) for s in alert.on_states)
        print(f"alert {alert.name}: on {states}" + (f" to {alert.webhook_url}" if alert.webhook_url else " (log)"))
    return exit_codes.OK


def run_execute(args, client) -> int:
    given = {}
    if args.input_file:
        given = specs.read_document(args.input_file)
        if not isinstance(given, dict):
            raise CommandError(f"{args.input_file}: expected an object of input values (key: value pairs)")
    given.update(key_values(args.input, "--input"))
    execution = client.execute_pipeline(args.pipeline, given, execution_id=args.execution_id)
    if args.output == "json":
        print_json(execution, lines=args.watch)
    else:
        print(f"{execution.name} {state(execution.state)}")
    if args.watch:
        return watch(client, execution.name, output=args.output)
    return exit_codes.OK


def run_watch(args, client) -> int:
    return watch(client, args.execution, output=args.output, from_sequence=args.from_sequence)


def watch(client, name: str, *, output: str, from_sequence: int = 0) -> int:
    """One line per event until the execution ends, then each stage's outcome. JSON output: one
    event per line, then the final execution."""
    for event in client.watch_execution(name, from_sequence=from_sequence):
        if output == "json":
            print_json(event, lines=True)
        else:
            print(_event_line(event), flush=True)
    final = client.get_execution(name)
    if output == "json":
        print_json(final, lines=True)
    else:
        print(_stages_table(final))
        print(f"{final.name} {state(final.state)}")
    return exit_codes.for_outcome("execution", final.name, final.state, final.error.message or final.state_message)


def _event_line(event: pipeline_pb2.ExecutionEvent) -> str:
    """`train completed: ...`, `execution running: ...`."""
    kind = enum_name(pipeline_pb2.ExecutionEventType, event.type).lower().removeprefix("stage_")
    subject = event.stage_id or "execution"
    if event.type == pipeline_pb2.ExecutionEventType.EXECUTION_EVENT_TYPE_EXECUTION_STATE:
        kind = state(event.execution_state).lower()
    attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
    text = event.message
    if event.type == pipeline_pb2.ExecutionEventType.EXECUTION_EVENT_TYPE_STAGE_METRICS:
        metrics = struct_to_dict(event.data).get("metrics", {})
        shown = [key for key in ("epoch", *METRICS) if key in metrics]
        text = ", ".join(f"{key} {number(metrics[key])}" for key in shown) or text
    message = f": {text}" if text else ""
    return f"{timestamp(event.time)} {subject} {kind}{attempt}{message}"


def _stages_table(execution: pipeline_pb2.PipelineExecution) -> str:
    rows = []
    for stage in execution.stages:
        note = stage.error.message or stage.skip_reason or ("cached" if stage.cached else "")
        outputs = struct_to_dict(stage.outputs)
        shown = ", ".join(f"{k} {number(v) if isinstance(v, float) else v}" for k, v in outputs.items()
                          if not isinstance(v, (dict, list)))
        text = note or shown
        if len(text) > NOTE_WIDTH:  # `pipelines watch --output json` or `executions` give it whole
            text = text[: NOTE_WIDTH - 3] + "..."
        rows.append([stage.stage_id, enum_name(pipeline_pb2.StageState, stage.state), stage.attempt, text or None])
    return table(["STAGE", "STATE", "ATTEMPT", "OUTPUTS / NOTE"], rows)


def run_executions(args, client) -> int:
    found = limited(client.list_executions(args.pipeline), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[e.name, state(e.state), e.trigger or "-", timestamp(e.create_time), timestamp(e.end_time)]
            for e in found]
    print(table(["NAME", "STATE", "TRIGGER", "CREATED", "ENDED"], rows))
    return exit_codes.OK


def run_cancel(args, client) -> int:
    execution = client.cancel_execution(args.execution)
    if args.output == "json":
        print_json(execution)
    else:
        print(f"{execution.name} {state(execution.state)}")
    return exit_codes.OK
