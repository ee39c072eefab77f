"""`forge-training models`: the registry of model versions: list, show, stage, evaluate."""

from __future__ import annotations

from forge.training.cli import exit_codes
from forge.training.cli.arguments import add_command, add_group, add_limit, limited
from forge.training.cli.output import enum_name, fields, number, print_json, table, timestamp
from forge.training.v1 import common_pb2, model_pb2


def register(commands, common) -> None:
    actions = add_group(commands, "models", "list, show, stage and evaluate registered model versions")

    listing = add_command(actions, "list", common, run_list, "list model versions",
                          "forge-training models list --filter stage=PRODUCTION")
    listing.add_argument("--filter", default="", help="a server filter: model_id=churn, framework=sklearn, "
                                                      "stage=PRODUCTION")
    add_limit(listing)

    show = add_command(actions, "show", common, run_show, "a model version: metrics, datasets, features, formats",
                       "forge-training models show projects/default/models/cancer-sgd/versions/1")
    show.add_argument("model", metavar="MODEL_VERSION")

    stage = add_command(actions, "stage", common, run_stage,
                        "move a version to staging, production (archiving the previous one), archived or none",
                        "forge-training models stage projects/default/models/cancer-sgd/versions/1 production")
    stage.add_argument("model", metavar="MODEL_VERSION")
    stage.add_argument("stage", metavar="STAGE")

    evaluate = add_command(actions, "evaluate", common, run_evaluate,
                           "a job's or model version's metrics on any dataset",
                           "forge-training models evaluate cancer-sgd cancer-test")
    evaluate.add_argument("model", metavar="JOB_OR_MODEL_VERSION")
    evaluate.add_argument("dataset", metavar="DATASET")


def _stage(model: model_pb2.Model) -> str:
    return enum_name(model_pb2.ModelStage, model.stage).lower() if model.stage else "-"


def run_list(args, client) -> int:
    found = limited(client.list_models(args.filter), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[m.name, _stage(m), m.framework, enum_name(common_pb2.ModelType, m.model_type).lower(),
             timestamp(m.create_time)] for m in found]
    print(table(["NAME", "STAGE", "FRAMEWORK", "TYPE", "CREATED"], rows))
    return exit_codes.OK


def run_show(args, client) -> int:
    model = client.get_model(args.model)
    if args.output == "json":
        print_json(model)
        return exit_codes.OK
    print(fields([
        ("name", model.name), ("stage", _stage(model)), ("framework", model.framework),
        ("type", enum_name(common_pb2.ModelType, model.model_type).lower()), ("training job", model.training_job),
        ("fine-tuned from", model.parent_model),
        ("datasets", ", ".join(model.datasets)),
        ("metrics", ", ".join(f"{k} {number(v)}" for k, v in sorted(model.metrics.items()))),
        ("features", ", ".join(model.input_features)), ("classes", ", ".join(model.class_labels)),
        ("export formats", ", ".join(enum_name(common_pb2.ExportFormat, f).lower() for f in model.export_formats)),
        ("artifact sha256", model.artifact_sha256), ("created", timestamp(model.create_time)),
    ]))
    return exit_codes.OK


def run_stage(args, client) -> int:
    model, archived = client.update_model_stage(args.model, args.stage)
    if args.output == "json":
        print_json({"model": model, "archived": archived})
        return exit_codes.OK
    print(f"{model.name} {_stage(model)}")
    for previous in archived:
        print(f"{previous.name} archived")
    return exit_codes.OK


def run_evaluate(args, client) -> int:
    report = client.evaluate_model(args.model, args.dataset)
    if args.output == "json":
        print_json(report)
        return exit_codes.OK
    print(f"{args.model} on {args.dataset} ({report.row_count} rows)")
    print(table(["METRIC", "VALUE"], sorted(report.metrics.items())))
    if report.class_labels and report.confusion_matrix:
        print("\nconfusion matrix (rows: true, columns: predicted)")
        print(_confusion(report))
    return exit_codes.OK


def _confusion(report) -> str:
    labels = list(report.class_labels)
    rows = [[label, *row.counts] for label, row in zip(labels, report.confusion_matrix)]
    return table(["", *labels], rows)
