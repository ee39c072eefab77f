"""What the worker makes of a trained run's export before it is stored (worker side).

For ONNX: the fitted processing and the input kind's encoding go in front of the model, so
the graph takes the raw columns (engine/export/raw_input.py): tabular feature columns, the
text column of a text model (tokenized inside the graph), the user and item id columns of a
recommender (looked up inside). When a step cannot be expressed exactly, and for forecasters
(whose window of past values is raw already), the graph keeps the model's own input and the
record says so. metadata_props say what made it: framework, architecture, library versions,
task, features (the graph's input names when it takes raw columns) and classes.

For every format: the input and output signature an inference engine needs, recorded
beside the artifact and sent in ExportMetadata.
"""

from __future__ import annotations

import json
from typing import Any

_ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 8: "string", 9: "bool"}
_INPUT_DTYPES = {"tabular": "float64", "sequence": "float64", "text": "string", "interactions": "string"}
# What a raw-columns graph takes, by input kind, for the log line.
_RAW_INPUTS = {
    "tabular": "the raw feature columns, with the processing inside",
    "text": "the raw text column, with the tokenization inside",
    "interactions": "the raw user and item id columns, with the id lookup inside",
}


def tensor_spec(name: str, dtype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": [int(d) for d in shape]}


def onnx_signature(model) -> dict[str, Any]:
    """Inputs and outputs of an ONNX graph; symbolic or unknown dimensions are -1."""
    def specs(values) -> list[dict[str, Any]]:
        out = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            out.append(tensor_spec(value.name, _ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)), dims))
        return out

    initializers = {i.name for i in model.graph.initializer}
    return {"inputs": specs(v for v in model.graph.input if v.name not in initializers),
            "outputs": specs(model.graph.output)}


def array_signature(task: str, input_kind: str, n_features: int, n_classes: int) -> dict[str, Any]:
    """The signature of a framework-native artifact (pickle, torch, savedmodel, xgboost JSON):
    the matrix TrainingData documents for the input kind, and the outputs the run predicts."""
    shape = [-1] if input_kind == "text" else [-1, n_features]
    inputs = [tensor_spec("input", _INPUT_DTYPES.get(input_kind, "float64"), shape)]
    if task == "classification":
        outputs = [tensor_spec("label", "string", [-1]), tensor_spec("probabilities", "float32", [-1, n_classes])]
    elif task == "anomaly_detection":
        outputs = [tensor_spec("label", "int64", [-1]), tensor_spec("scores", "float32", [-1])]
    else:
        outputs = [tensor_spec("variable", "float32", [-1, 1])]
    return {"inputs": inputs, "outputs": outputs}


def stamp_onnx(model, entries: dict[str, str]) -> None:
    """Set forge.* metadata_props (replacing earlier values of the same keys)."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    for key, value in [*kept, *entries.items()]:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def package_onnx(blob: bytes, manifest: dict[str, Any], model_info: dict[str, Any],
                 fitted: dict[str, Any] | None, raw_types: dict[str, str]) -> tuple[bytes, dict[str, Any], str]:
    """The ONNX export as stored: raw-column inputs when the processing allows, stamped.
    Returns (bytes, record extras: signature and raw_columns, a log line)."""
    import onnx

    from engine.export.raw_input import Unsupported, with_raw_inputs

    note = ""
    raw = False
    prep = model_info.get("preprocessing") or {}
    kind = prep.get("kind")
    if kind in _RAW_INPUTS and raw_types:
        try:
            blob = with_raw_inputs(blob, prep, fitted, raw_types)
            raw = True
            note = f"the ONNX graph takes {_RAW_INPUTS[kind]}"
        except Unsupported as exc:
            what = "processed features" if kind == "tabular" else "model's own input"
            note = f"the ONNX graph takes the {what} ({exc})"
    model = onnx.load_from_string(blob)
    raw_features = [i.name for i in model.graph.input] if raw else list(model_info.get("features") or [])
    stamp_onnx(model, {
        "forge.framework": manifest["framework"], "forge.architecture": manifest["architecture"],
        "forge.versions": json.dumps(manifest["versions"], sort_keys=True),
        "forge.task": model_info.get("task", ""),
        "forge.features": json.dumps(raw_features),
        "forge.classes": json.dumps(list(model_info.get("classes") or [])),
        "forge.raw_columns": "true" if raw else "false",
    })
    return model.SerializeToString(), {**onnx_signature(model), "raw_columns": raw}, note

