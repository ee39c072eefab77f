"""Run an exported ONNX model in onnxruntime and compare it with the framework's own output.

Output names are those skl2onnx gives a scikit-learn model converted with zipmap disabled:
  classifiers: "label" (predicted class, shape [n]; int64 for numeric labels, string
               otherwise) and "probabilities" (float32, shape [n, n_classes], columns in the
               estimator's classes_ order);
  regressors:  "variable" (float32, shape [n, 1]).
onnx_predict returns every output of the graph by name, so other exporters' names pass
through unchanged; check_parity compares "probabilities" when present, else "variable",
else "scores" (anomaly detectors), else the only output there is.
"""

from __future__ import annotations

import numpy as np


def onnx_predict(onnx_bytes: bytes, X: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the model on rows X, by name. X is cast to the type the model's only input
    declares: int64 for token or id inputs, float32 otherwise."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"expected a model with one input tensor, got {[i.name for i in inputs]}")
    dtype = np.int64 if inputs[0].type == "tensor(int64)" else np.float32
    features = np.ascontiguousarray(np.asarray(X), dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {inputs[0].name: features})
    return dict(zip(names, values))


def _compared_output(outputs: dict[str, np.ndarray]) -> np.ndarray:
    for name in ("probabilities", "variable", "scores"):
        if name in outputs:
            return outputs[name]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    raise ValueError(f"cannot tell which output to compare among {sorted(outputs)}")


def check_parity(onnx_bytes: bytes, reference: np.ndarray, X: np.ndarray, atol: float = 1e-5,
                 *, rtol: float = 0.0) -> float:
    """The largest absolute difference between the ONNX model's output on X and `reference`
    (the framework's class probabilities, or predictions for a regressor).

    Raises ValueError when any element differs by more than atol + rtol * |reference| (the
    rule of numpy.isclose; rtol suits regression targets of large magnitude), or when the
    shapes disagree.
    """
    got = np.asarray(_compared_output(onnx_predict(onnx_bytes, X)), dtype=np.float64)
    want = np.asarray(reference, dtype=np.float64)
    if want.ndim == 1 and got.ndim == 2 and got.shape[1] == 1:
        got = got[:, 0]  # regressors produce a [n, 1] column
    if got.shape != want.shape:
        raise ValueError(f"ONNX output has shape {got.shape}, the reference {want.shape}")
    if got.size == 0:
        return 0.0
    diff = np.abs(got - want)
    worst = float(diff.max())
    allowed = atol + rtol * np.abs(want)
    if np.any(diff > allowed) or not np.all(np.isfinite(diff)):
        row = int(np.unravel_index(np.argmax(diff - allowed), diff.shape)[0])
        raise ValueError(
            f"ONNX output differs from the reference by up to {worst:.3g} "
            f"(allowed atol={atol:g}, rtol={rtol:g}); worst row {row}"
        )
    return worst
