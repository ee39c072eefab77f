"""Read what a model artifact from outside the service is: framework, task, features, classes.

Runs in a separate process (`inspect_isolated`): the server process never imports a
framework, and a pickle the operator allowed still runs its author's code somewhere the
server's memory and state are out of reach.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import InvalidArgument


def inspect_artifact(path: str, fmt: str) -> dict[str, Any]:
    """What LoadModel records about a foreign artifact; InvalidArgument on field `path` when
    the file is not a model in `fmt`."""
    try:
        return _READERS[fmt](path)
    except InvalidArgument:
        raise
    except Exception as exc:  # noqa: BLE001 - each library fails in its own way on a bad file
        raise InvalidArgument.field("path", f"the file is not a readable {fmt} model: "
                                            f"{type(exc).__name__}: {exc}") from None


def _onnx(path: str) -> dict[str, Any]:
    import onnx
    import onnxruntime

    from engine.export.package import onnx_signature

    model = onnx.load(path)
    onnx.checker.check_model(model)
    onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])  # it runs, not just parses
    props = {p.key: p.value for p in model.metadata_props}
    signature = onnx_signature(model)
    raw = props.get("forge.raw_columns") == "true" or len(signature["inputs"]) > 1
    features = json.loads(props["forge.features"]) if "forge.features" in props else \
        [i["name"] for i in signature["inputs"]] if raw else []
    classes = json.loads(props.get("forge.classes", "[]"))
    task = props.get("forge.task") or ("classification" if any(o["name"] == "probabilities"
                                                                  for o in signature["outputs"]) else "")
    return {"framework": props.get("forge.framework", "onnx"), "task": task, "features": features,
            "classes": classes, "versions": json.loads(props.get("forge.versions", "{}")) or
            {"onnx": onnx.__version__}, "signature": {**signature, "raw_columns": raw}}


def _xgboost(path: str) -> dict[str, Any]:
    import xgboost

    from engine.export.package import array_signature

    booster = xgboost.Booster()
    booster.load_model(path)
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    n_features = booster.num_features()
    features = list(booster.feature_names or [f"f{i}" for i in range(n_features)])
    n_classes = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)
    if objective.startswith(("binary:", "multi:")):
        task, classes = "classification", [str(c) for c in range(max(2, n_classes))]
    else:
        task, classes = "regression", []
    return {"framework": "xgboost", "task": task, "features": features, "classes": classes,
            "versions": {"xgboost": xgboost.__version__},
            "signature": array_signature(task, "tabular", n_features, len(classes))}


def _pickle(path: str) -> dict[str, Any]:
    import pickle

    from engine.export.package import array_signature

    with open(path, "rb") as f:
        model = pickle.load(f)  # noqa: S301 - only for files the operator allowed (LoadPolicy)
    module = type(model).__module__.split(".")[0]
    framework = {"sklearn": "sklearn", "xgboost": "xgboost"}.get(module)
    if framework is None:
        raise InvalidArgument.field("path", f"the pickle holds a {type(model).__module__}.{type(model).__name__}; "
                                            "only scikit-learn and XGBoost models are accepted")
    n_features = int(getattr(model, "n_features_in_", 0))
    names = getattr(model, "feature_names_in_", None)
    features = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(n_features)]
    classes = [str(c) for c in getattr(model, "classes_", [])]
    task = "classification" if classes else "regression"
    library = __import__(module)
    return {"framework": framework, "task": task, "features": features, "classes": classes,
            "versions": {"scikit-learn" if module == "sklearn" else module: library.__version__},
            "signature": array_signature(task, "tabular", n_features, len(classes))}


_READERS = {"onnx": _onnx, "xgboost_json": _xgboost, "pickle": _pickle}


def inspect_isolated(path: str, fmt: str, timeout: float = 120.0) -> dict[str, Any]:
    from engine.jobs.isolated import run_isolated

    return run_isolated(inspect_artifact, (path, fmt), timeout, what="inspecting the model artifact")
