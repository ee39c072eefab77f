"""The export formats a trained model can be written in, and how each is named and served.

Format names are the lowercase forms of the proto's ExportFormat values (EXPORT_FORMAT_ONNX
-> "onnx"); the server translates the enum, the engine only ever sees these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument


@dataclass(frozen=True)
class ExportFormat:
    name: str
    #: File name suggested to clients (ExportMetadata.filename) and used in artifact storage.
    filename: str
    #: MIME type sent in ExportMetadata.content_type.
    content_type: str
    description: str


# ONNX, pickle and torch files have no registered MIME type, so they travel as opaque
# bytes; the SavedModel directory is sent as a tar archive.
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("onnx", "model.onnx", "application/octet-stream",
                     "ONNX graph; runs in onnxruntime and most inference engines"),
        ExportFormat("pickle", "model.pkl", "application/octet-stream",
                     "Python pickle of the fitted model; load it only from a source you trust"),
        ExportFormat("savedmodel", "model.savedmodel.tar", "application/x-tar",
                     "TensorFlow SavedModel directory as a tar archive"),
        ExportFormat("torch", "model.pt", "application/octet-stream",
                     "torch.save dict: the PyTorch state dict and config (for fine-tuning) and, under "
                     "\"program\", the bytes of a torch.export.save of the network (probabilities for "
                     "classifiers, values otherwise; any batch size); reload it with torch alone: "
                     "obj = torch.load(path, weights_only=True); "
                     "module = torch.export.load(io.BytesIO(obj[\"program\"])).module(); module(x)"),
        ExportFormat("xgboost_json", "model.json", "application/json",
                     "XGBoost's native JSON model (Booster.save_model)"),
    )
}


def parse_format(name: str) -> str:
    """The canonical name of export format `name`, or InvalidArgument on field `format`."""
    if name in FORMATS:
        return name
    known = ", ".join(FORMATS)
    if isinstance(name, str) and name.lower() in FORMATS:
        raise InvalidArgument.field("format", f"export format names are lowercase: use {name.lower()!r}")
    raise InvalidArgument.field("format", f"unknown export format {name!r}; use one of: {known}")


def format_info(name: str) -> ExportFormat:
    """File name and content type of export format `name` (validated like parse_format)."""
    return FORMATS[parse_format(name)]
