"""`forge-training alerts RESOURCE`: the alerts a job, tuning job, pipeline or execution sent to
webhooks, with each delivery's attempts."""

from __future__ import annotations

from forge.training.cli import exit_codes
from forge.training.cli.arguments import add_command, add_limit, limited
from forge.training.cli.output import enum_name, print_json, table, timestamp
from forge.training.v1 import alert_pb2


def register(commands, common) -> None:
    parser = add_command(commands, "alerts", common, run_alerts,
                         "the alerts a training job, tuning job, pipeline or execution sent to webhooks, newest "
                         "first: state, attempts, last answer", "forge-training alerts cancer-sgd")
    parser.add_argument("resource", metavar="RESOURCE",
                        help="a training job (name or id), tuning job, pipeline or pipeline execution")
    add_limit(parser)


def run_alerts(args, client) -> int:
    found = limited(client.list_alert_deliveries(args.resource), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[d.alert, d.event, enum_name(alert_pb2.AlertDeliveryState, d.state).lower(), d.attempts,
             d.last_response_code or "-", d.last_error or "-", timestamp(d.create_time), d.resource]
            for d in found]
    print(table(["ALERT", "EVENT", "STATE", "ATTEMPTS", "LAST", "ERROR", "FIRED", "RESOURCE"], rows))
    return exit_codes.OK
