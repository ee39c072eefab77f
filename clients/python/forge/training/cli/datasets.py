"""`forge-training datasets`: upload, create, list, show (schema and statistics), validate, split."""

from __future__ import annotations

from forge.training.cli import exit_codes, specs
from forge.training.cli.arguments import add_command, add_group, add_limit, key_values, limited, ratios
from forge.training.cli.output import enum_name, fields, print_json, size, table, timestamp
from forge.training.client import struct_to_dict
from forge.training.v1 import dataset_pb2


def register(commands, common) -> None:
    actions = add_group(commands, "datasets", "upload, create, list, show, validate and split datasets")

    upload = add_command(actions, "upload", common, run_upload, "upload a local CSV, Parquet or JSON Lines file",
                         "forge-training datasets upload breast_cancer.csv --id cancer --label-column target")
    upload.add_argument("file", metavar="FILE")
    _creation_options(upload)

    create = add_command(actions, "create", common, run_create,
                         "register data the server can read: a path, file://, s3:// or gs:// URI",
                         "forge-training datasets create s3://bucket/churn.parquet --id churn --label-column churned")
    create.add_argument("source_uri", metavar="URI")
    _creation_options(create)

    listing = add_command(actions, "list", common, run_list, "list datasets, newest first",
                          "forge-training datasets list --output json")
    listing.add_argument("--filter", default="", help="a server filter, e.g. type=TABULAR")
    add_limit(listing)

    show = add_command(actions, "show", common, run_show, "a dataset with its schema and column statistics",
                       "forge-training datasets show cancer")
    show.add_argument("dataset", metavar="DATASET")

    validate = add_command(actions, "validate", common, run_validate,
                           "check a dataset against ValidationRules from a YAML or JSON file (exit 1 when a rule "
                           "fails)", "forge-training datasets validate cancer rules.yaml")
    validate.add_argument("dataset", metavar="DATASET")
    validate.add_argument("rules", metavar="RULES_FILE", help="ValidationRules in their JSON form, as YAML or JSON")

    split = add_command(actions, "split", common, run_split, "split a dataset by ratios into new datasets",
                        "forge-training datasets split cancer --ratios 0.7,0.15,0.15 --seed 42 "
                        "--stratify-column target")
    split.add_argument("dataset", metavar="DATASET")
    split.add_argument("--ratios", nargs="+", required=True, metavar="R",
                       help="fractions summing to 1, e.g. 0.7,0.15,0.15")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--stratify-column", default="", metavar="COLUMN", help="keep this column's proportions")
    split.add_argument("--group-column", default="", metavar="COLUMN", help="keep each group in one part")
    split.add_argument("--time-column", default="", metavar="COLUMN", help="cut the parts in time order")
    split.add_argument("--no-shuffle", action="store_true", help="keep the rows' order")
    split.add_argument("--ids", default="", metavar="ID,ID,...", help="ids of the new datasets, one per ratio")


def _creation_options(parser) -> None:
    parser.add_argument("--id", default="", dest="dataset_id", help="the dataset id (default: generated)")
    parser.add_argument("--label-column", default="", metavar="COLUMN")
    parser.add_argument("--display-name", default="", metavar="NAME")
    parser.add_argument("--format", default=None, help="csv, parquet, jsonl, image_folder or text "
                                                       "(default: from the file name)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", dest="labels",
                        help="a user label of the dataset (repeatable), e.g. what a pipeline's dataset_created "
                             "trigger filters on")


def run_upload(args, client) -> int:
    dataset = client.upload_dataset(args.file, dataset_id=args.dataset_id, label_column=args.label_column,
                                    display_name=args.display_name, format=args.format, labels=_labels(args))
    return _print_created(args, dataset)


def run_create(args, client) -> int:
    dataset = client.create_dataset(args.source_uri, dataset_id=args.dataset_id, label_column=args.label_column,
                                    display_name=args.display_name, format=args.format, labels=_labels(args))
    return _print_created(args, dataset)


def _labels(args) -> dict[str, str]:
    return key_values(args.labels, "--label", as_text=True)  # label values are text, as given


def _print_created(args, dataset: dataset_pb2.Dataset) -> int:
    if args.output == "json":
        print_json(dataset)
    else:
        print(f"{dataset.name}: {dataset.row_count} rows, {len(dataset.schema.columns)} columns, "
              f"{size(dataset.size_bytes)}")
    return exit_codes.OK


def run_list(args, client) -> int:
    found = limited(client.list_datasets(filter=args.filter), args.limit)
    if args.output == "json":
        print_json(found)
        return exit_codes.OK
    rows = [[d.name, d.row_count, len(d.schema.columns), d.label_column or "-", d.lineage.operation or "-",
             timestamp(d.create_time)] for d in found]
    print(table(["NAME", "ROWS", "COLUMNS", "LABEL", "MADE BY", "CREATED"], rows))
    return exit_codes.OK


def run_show(args, client) -> int:
    dataset = client.get_dataset(args.dataset)
    if args.output == "json":
        print_json(dataset)
        return exit_codes.OK
    lineage = dataset.lineage.operation
    if dataset.lineage.parents:
        lineage += " of " + ", ".join(dataset.lineage.parents)
    parameters = struct_to_dict(dataset.lineage.parameters)
    if parameters:
        lineage += " " + ", ".join(f"{k}={v}" for k, v in parameters.items())
    print(fields([
        ("name", dataset.name), ("display name", dataset.display_name),
        ("type", enum_name(dataset_pb2.DatasetType, dataset.type)), ("rows", dataset.row_count),
        ("size", size(dataset.size_bytes)), ("sha256", dataset.content_sha256), ("label column", dataset.label_column),
        ("source", dataset.source_uri), ("lineage", lineage), ("version", dataset.version),
        ("created", timestamp(dataset.create_time)),
    ]))
    print()
    print(schema_table(dataset))
    labels = dataset.statistics.label_distribution
    if labels:
        counts = ", ".join(f"{v.value}: {v.count}" for v in labels)
        print(f"\nlabel distribution ({dataset.label_column or 'label'}): {counts}")
    return exit_codes.OK


def schema_table(dataset: dataset_pb2.Dataset) -> str:
    """One row per column: its type and statistics."""
    statistics = {c.name: c for c in dataset.statistics.columns}
    rows = []
    for column in dataset.schema.columns:
        stats = statistics.get(column.name)
        kind = enum_name(dataset_pb2.DataType, column.data_type).lower()
        if column.categorical:
            kind += " (categorical)"
        if stats is None:
            rows.append([column.name, kind] + [None] * 7)
            continue
        numeric = [stats.min if stats.HasField("min") else None, stats.mean if stats.HasField("mean") else None,
                   stats.max if stats.HasField("max") else None, stats.std if stats.HasField("std") else None]
        top = "" if stats.HasField("mean") else ", ".join(f"{v.value} ({v.count})" for v in stats.top_values[:3])
        rows.append([column.name, kind, stats.null_count, stats.distinct_count, *numeric, top or None])
    headers = ["COLUMN", "TYPE", "NULLS", "DISTINCT", "MIN", "MEAN", "MAX", "STD", "TOP VALUES"]
    if all(row[-1] is None for row in rows):  # all numeric: no column of dashes
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return table(headers, rows)


def run_validate(args, client) -> int:
    rules = specs.load(args.rules, dataset_pb2.ValidationRules)
    report = client.validate_dataset(args.dataset, rules)
    if args.output == "json":
        print_json(report)
    elif report.valid:
        print(f"{args.dataset}: valid")
    else:
        rows = [[i.rule, i.column or "-", i.violation_count, ", ".join(str(r) for r in i.example_rows) or "-",
                 i.message] for i in report.issues]
        print(f"{args.dataset}: {len(report.issues)} rule(s) failed")
        print(table(["RULE", "COLUMN", "ROWS", "EXAMPLE ROWS", "MESSAGE"], rows))
    return exit_codes.OK if report.valid else exit_codes.ENDED_BADLY


def run_split(args, client) -> int:
    ids = [part.strip() for part in args.ids.split(",") if part.strip()]
    parts = client.split_dataset(args.dataset, ratios(args.ratios), seed=args.seed,
                                 stratify_column=args.stratify_column, dataset_ids=ids, no_shuffle=args.no_shuffle,
                                 group_column=args.group_column, time_column=args.time_column)
    if args.output == "json":
        print_json(parts)
    else:
        print(table(["NAME", "ROWS"], [[p.name, p.row_count] for p in parts]))
    return exit_codes.OK

