"""`forge-training export JOB -o FILE`: the trained model, with progress on stderr; the file appears
only once its size and sha256 match what the server reports (the SDK checks them)."""

from __future__ import annotations

import sys
from pathlib import Path

from forge.training.cli import exit_codes
from forge.training.cli.arguments import add_command
from forge.training.cli.output import enum_name, print_json, size, to_json
from forge.training.cli.progress import ByteProgress
from forge.training.v1 import common_pb2


def register(commands, common) -> None:
    parser = add_command(commands, "export", common, run_export,
                         "download a completed job's or model version's model (onnx, pickle, torch, savedmodel, "
                         "xgboost_json)", "forge-training export cancer-sgd --format onnx -o model.onnx")
    parser.add_argument("model", metavar="JOB_OR_MODEL_VERSION")
    parser.add_argument("--format", default="onnx", help="the export format (default: onnx)")
    parser.add_argument("-o", "--output-file", required=True, metavar="FILE",
                        help="where to write it (an existing directory: the server's suggested file name)")


def run_export(args, client) -> int:
    target = Path(args.output_file)
    into_directory = target.is_dir()
    progress = ByteProgress(sys.stderr, f"exporting {args.model} as {args.format}")
    try:
        metadata = client.export_model(args.model, args.format, target, progress=progress)
    finally:
        progress.close()
    if into_directory:  # the SDK named the file as the server suggests
        target = target / Path(metadata.filename).name
    if args.output == "json":
        print_json({"path": str(target), **to_json(metadata)})
    else:
        print(f"wrote {target}: {enum_name(common_pb2.ExportFormat, metadata.format).lower()}, "
              f"{size(metadata.size_bytes)}, sha256 {metadata.sha256}")
    return exit_codes.OK
