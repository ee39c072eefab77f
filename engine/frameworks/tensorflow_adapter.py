"""TensorFlow (Keras 3, TensorFlow backend) behind the FrameworkAdapter contract:
multi-layer perceptrons, convolutional image classifiers, text classifiers and LSTM
forecasters. Every network is a keras.Sequential whose input is the data layer's X as it
arrives (engine.frameworks.base.TrainingData), so checkpoints and exports take the same input.

Architecture "mlp" (classification and regression, tabular input):
  Normalization (adapted to the training features) ->
  [Dense -> BatchNormalization? -> activation -> Dropout?] per hidden unit count ->
  Dense output: softmax over the classes (cross_entropy), one sigmoid unit for the second
  class (binary_cross_entropy on two classes), or one linear unit (regression).
The Normalization layer holds the features' mean and variance as weights, so the network,
its checkpoints and its exports take raw features. Features that are constant in the
training data get variance 1 (Keras would divide their deviations by 1e-7). Regressors
learn standardized targets ((y - mean) / std of the training targets): one learning rate
then suits any target scale. Predictions, metrics and exports are in target units; the mse,
mae and huber losses are minimized in standardized units (huber's delta of 1 is one target
std). l1 and l2 are kernel regularizers on every Dense, Conv2D and LSTM layer.

Architecture "cnn" (classification; images arrive as pixel columns, model_config.input_shape
[height, width] or [channels, height, width] says how, the pixel columns in that row-major order):
  Reshape to the image (Reshape + Permute for [C, H, W], so the network sees H x W x C) ->
  Normalization per channel (one mean and variance over all pixels of a channel) ->
  per `filters` entry (default [16, 32]): Conv2D(kernel_size (default 3), padding same) ->
  BatchNormalization? -> activation -> MaxPooling2D(2) on every side still at least 2 long ->
  Flatten -> the mlp's hidden blocks (hidden_units default [64]) -> the classifier output.
prod(input_shape) must equal the number of feature columns (checked when the run is created).

Architecture "text_classifier" (classification; text input): the vocabulary is
engine.data.text.build_vocabulary of the training texts (vocab_size default 5000: id 0 pads,
id 1 is any unknown word), texts are engine.data.text.encode'd to max_length (default 64) ids ->
  Embedding(len(vocabulary) + 2, embedding_dim (default 32), mask_zero) ->
  masked mean over the tokens (padding excluded; a text without tokens averages to zeros) ->
  the mlp's hidden blocks (hidden_units default [32]) -> the classifier output.
The vocabulary is part of the checkpoint (a resumed run keeps its tokenizer) and of
`input_preprocessing` ({"vocabulary", "max_length", "tokenizer": "engine.data.text"}), which the
worker records for whoever feeds the exported model token ids.

Architecture "lstm" (forecasting; sequence input [n, window], oldest value first):
  Normalization (one mean and variance over all training window values) -> Reshape (window, 1) ->
  num_layers (default 1) stacked LSTM(hidden_size (default 32)) (return_sequences on all but the
  last) with Dropout? after each -> Dense(1), a standardized next value which, as for mlp
  regressors, is rescaled to series units by predictions and exports. Metrics are the regression
  metrics. batch_norm does not apply to it (the first epoch's logs say it is ignored).

One epoch is one model.fit(epochs=1, shuffle=False) over the training rows in the order of
numpy.random.default_rng((seed, epoch)).permutation, so a run resumed from a checkpoint sees
exactly the batches of an uninterrupted one. keras.utils.set_random_seed(seed) runs before
the network is built; dropout draws from Keras seed generators whose state is part of
model.variables and of the checkpoint, so even runs with dropout resume exactly.
Before each epoch the learning rate comes from engine.callbacks.lr_schedule and is assigned to
the optimizer. gradient_clip_norm is the optimizer's global_clipnorm; gradient_accumulation_steps
> 1 is the optimizer's gradient_accumulation_steps (it steps every k batches on their mean
gradient; the accumulators are optimizer variables, so they are checkpointed too).
weight_decay is Keras's decoupled weight decay, which every Keras optimizer has; adamw is
AdamW with that decay (adamw with weight_decay 0 is adam).

Epoch metrics are computed with engine.frameworks.metrics on the model's predictions after
the epoch: training_loss and validation_loss are log loss (classification) or mean squared
error in target units (regression, forecasting) on all training / validation rows, whatever
loss is minimized, so they compare across frameworks and losses. extra["train_objective"] is
what Keras minimized: the mean over the epoch's batches of the loss plus regularization
penalties. gradient_norm is the global norm of the gradient of that objective (class weights
and penalties included) with respect to the trainable weights at the end of the epoch, on the
epoch's FIRST batch (the first batch_size rows of its shuffled order), computed with
tf.GradientTape in inference mode (dropout off, batch normalization on its moving statistics)
so that measuring it neither draws dropout randomness nor moves batch-norm statistics.

Placement: the GPU when TensorFlow sees one and resources.gpu > 0, else the CPU.
mixed_precision trains hidden layers in float16 (mixed_float16, loss scaling) on a GPU only;
on the CPU it is ignored and the first epoch's logs say so.

Exports: "onnx" (tf2onnx) and "savedmodel" (a tar of the SavedModel directory). Both hold the
same serving function of one input named "input" with a dynamic batch axis: float32
[n, n_features] (mlp; cnn: the pixel columns, reshaped inside the model), int64 [n, max_length]
token ids (text_classifier; ids outside the vocabulary count as unknown), float32 [n, window]
(lstm). The outputs are those engine.export.parity documents: "label" and "probabilities"
(columns in class_labels order, two columns for a sigmoid classifier) for classifiers,
"variable" [n, 1] for regressors and forecasters. Every ONNX export is run in onnxruntime on
(up to 4096) validation rows and compared with the model: probabilities within 1e-4, regression
and forecast values within 1e-4 of the largest prediction's magnitude (2e-3 for both under
mixed precision, whose float16 layers the export keeps). LSTM layers are traced with Keras's
generic implementation for the exports, never cuDNN's (which neither ONNX nor a CPU can run).

validate() runs in the server process: tensorflow, keras, tf2onnx, onnx and onnxruntime are
imported only inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from engine.callbacks.lr_schedule import LearningRateSchedule
from engine.data import text as text_encoding
from engine.errors import FailedPrecondition, InvalidArgument
from engine.frameworks import neural
from engine.frameworks.base import EpochResult, FrameworkAdapter, Prediction, TrainingData, TrainingRun
from engine.frameworks.metrics import classification_metrics, regression_metrics
from engine.jobs.spec import TrainingSpec

TC = "training_config"
HP = "model_config.hyperparameters"
# The network architectures this adapter builds (engine.frameworks.neural.NETWORKS names them
# all; validate_network answers Unimplemented for the others).
ARCHITECTURES = ("mlp", "cnn", "text_classifier", "lstm")
# Defaults of the architectures' hyperparameters.
DEFAULT_HIDDEN_UNITS = {"cnn": [64], "text_classifier": [32]}  # mlp: neural.hidden_units's
DEFAULT_FILTERS = [16, 32]
DEFAULT_KERNEL_SIZE = 3
DEFAULT_EMBEDDING_DIM = 32
DEFAULT_VOCAB_SIZE = 5000
DEFAULT_MAX_LENGTH = 64
DEFAULT_HIDDEN_SIZE = 32
DEFAULT_NUM_LAYERS = 1
_STATE_FORMAT = 1
# keras.utils.set_random_seed seeds numpy's global generator, which takes 0..2**32 - 1.
_MAX_SEED = 2**32 - 1
# Largest absolute difference allowed between the ONNX export and the model: class
# probabilities, or regression predictions per unit of the largest prediction magnitude
# (float32 keeps about 7 significant digits whatever the target scale).
ONNX_TOLERANCE = 1e-4
# The same under mixed precision: float16 hidden layers round to about 5e-4 relative, and
# TensorFlow and onnxruntime round in different places (measured on the CPU: up to 3.4e-4).
ONNX_TOLERANCE_MIXED = 2e-3
# Validation rows the ONNX check runs on, and rows per forward pass when predicting.
_PARITY_ROWS = 4096
_PREDICT_CHUNK = 65536

# optimizer_config option -> the optimizers that use it.
# optimizer_config names -> Keras argument names.
_KERAS_OPTION = {"beta1": "beta_1", "beta2": "beta_2"}


# --- validation (server side: no TensorFlow) ------------------------------------------------


metric_names = neural.metric_names


def _validate(spec: TrainingSpec) -> None:
    """Everything about `spec` this adapter can check without data; InvalidArgument names the field."""
    neural.validate_network(spec, "tensorflow", ARCHITECTURES)
    # What the shared validation leaves to this framework:
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed <= _MAX_SEED:
        raise InvalidArgument.field(f"{TC}.seed", f"tensorflow seeds must be between 0 and {_MAX_SEED}; "
                                                  f"got {spec.seed!r}")


# --- TensorFlow (imported in the worker only) -----------------------------------------------


def _import_tensorflow() -> tuple[Any, Any]:
    """tensorflow and keras, imported quietly with Keras on the TensorFlow backend."""
    # TensorFlow's C++ logging reads this once, when it loads; 2 keeps warnings and errors
    # out of the worker's stderr but lets an operator who set it choose otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" not in sys.modules:
        # Keras picks its backend once, at import, from this variable or ~/.keras/keras.json.
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()!r} backend in this process; "
                           "the tensorflow adapter needs KERAS_BACKEND=tensorflow")
    return tf, keras


def _placement(tf: Any, spec: TrainingSpec) -> tuple[str, bool, list[str]]:
    """(device, on_gpu, log lines): the first GPU when one is visible and resources.gpu > 0."""
    gpus = tf.config.list_physical_devices("GPU")
    if spec.resources.gpu > 0 and gpus:
        return "/GPU:0", True, [f"training on the GPU ({gpus[0].name})"]
    if spec.resources.gpu > 0:
        return "/CPU:0", False, ["resources.gpu asks for a GPU but TensorFlow sees none; training on the CPU"]
    note = [f"{len(gpus)} GPU(s) visible but resources.gpu is 0; training on the CPU"] if gpus else []
    return "/CPU:0", False, note


def _optimizer(keras: Any, spec: TrainingSpec, notes: list[str]) -> Any:
    name = neural.optimizer_name(spec)
    reg = spec.regularization
    options = {_KERAS_OPTION.get(k, k): v for k, v in spec.optimizer_config.items()}
    if "nesterov" in options:
        options["nesterov"] = bool(options["nesterov"])
    common: dict[str, Any] = {"learning_rate": neural.learning_rate(spec)}
    if reg.gradient_clip_norm:
        common["global_clipnorm"] = reg.gradient_clip_norm
    if spec.gradient_accumulation_steps > 1:
        common["gradient_accumulation_steps"] = spec.gradient_accumulation_steps
    if name == "adamw":
        # Keras's AdamW defaults to a decay of 0.004; the spec's value is used as given.
        if not reg.weight_decay:
            notes.append("adamw without weight decay is adam: set training_config.regularization.weight_decay")
        return keras.optimizers.AdamW(weight_decay=reg.weight_decay, **common, **options)
    if reg.weight_decay:
        common["weight_decay"] = reg.weight_decay
    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(**common, **options)


def _loss(keras: Any, name: str) -> Any:
    return {
        "cross_entropy": keras.losses.SparseCategoricalCrossentropy,
        "binary_cross_entropy": keras.losses.BinaryCrossentropy,
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
    }[name]()


@contextlib.contextmanager
def _exporting(model: Any, norm: Any) -> Iterator[None]:
    """While exporting, a function traced in this context reads the Normalization layer's
    mean and variance from its variables instead of capturing them as eager tensors, and
    traces LSTM layers with Keras's generic implementation.

    Keras keeps the adapted statistics as eager tensors computed from the variables
    (finalize_state); a tf.function captures those as extra inputs, which tf2onnx turns into
    graph inputs the caller would have to feed. Calling finalize_state inside the trace makes
    them graph reads of the variables, which the exporters freeze into constants; on the way
    out the eager tensors are rebuilt for training and prediction. On a GPU an LSTM layer
    would trace to a cuDNN kernel, which tf2onnx cannot convert and a CPU cannot run."""
    recurrent = [layer for layer in model.layers if hasattr(layer, "use_cudnn")]
    saved = [layer.use_cudnn for layer in recurrent]
    for layer in recurrent:
        layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in zip(recurrent, saved):
            layer.use_cudnn = value
        if norm is not None:
            norm.finalize_state()


def _texts(X: np.ndarray) -> list[str]:
    """The texts of a text-kind X (object [n], or [n, 1]); missing values are empty texts."""
    X = np.asarray(X, dtype=object)
    if X.ndim == 2 and X.shape[1] == 1:
        X = X[:, 0]
    if X.ndim != 1:
        raise ValueError(f"expected one text per row, got an array of shape {X.shape}")
    return ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t) for t in X.tolist()]


_MASKED_MEAN: Any = None


def _masked_mean(keras: Any) -> Any:
    """The layer class averaging token embeddings over the non-padding positions (Keras's
    GlobalAveragePooling1D divides by zero on a text without tokens; this gives zeros)."""
    global _MASKED_MEAN
    if _MASKED_MEAN is None:
        ops = keras.ops

        class MaskedMean(keras.layers.Layer):
            def __init__(self, **kwargs: Any):
                super().__init__(**kwargs)
                self.supports_masking = True

            def call(self, inputs: Any, mask: Any = None) -> Any:
                if mask is None:
                    return ops.mean(inputs, axis=1)
                weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
                total = ops.sum(inputs * weights, axis=1)
                return total / ops.maximum(ops.sum(weights, axis=1), ops.cast(1, inputs.dtype))

            def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
                return None

            def compute_output_shape(self, input_shape: Any) -> Any:
                return (input_shape[0], input_shape[2])

        _MASKED_MEAN = MaskedMean
    return _MASKED_MEAN


class TensorFlowRun(TrainingRun):
    """One Keras network trained epoch by epoch; see the module docstring.

    fit_statistics=False (loading a checkpoint) skips fitting the normalization and target
    statistics, which the checkpoint restores; `vocabulary` (a text_classifier's, from the
    checkpoint) replaces the one built from the training texts."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, *, fit_statistics: bool = True,
                 vocabulary: list[str] | None = None):
        if data.task != spec.model_type:
            raise ValueError(f"data prepared for {data.task!r}, spec trains {spec.model_type!r}")
        _validate(spec)
        self._arch = spec.architecture
        self._kind = neural.NETWORKS[self._arch]["input_kind"]
        if data.input_kind != self._kind:
            raise ValueError(f"data prepared as {data.input_kind!r} input; {self._arch} reads {self._kind!r}")
        self._spec = spec
        self._data = data
        self.total_epochs = spec.epochs
        self._classifier = spec.model_type == "classification"
        self._loss_name = neural.loss_name(spec)
        self._sigmoid = self._loss_name == "binary_cross_entropy"
        self._classes = list(data.classes) if self._classifier else None
        self._notes: list[str] = []
        if self._classifier:
            self._check_classes()
        self._class_weight = self._class_weights()
        self._epoch = 0
        self._announced_no_validation = False
        self._vocabulary: list[str] = []
        if self._kind == "text":
            self._max_length = neural.int_hyperparameter(spec, "max_length", DEFAULT_MAX_LENGTH)
            self._n_features = self._max_length
            self._vocabulary = self._text_vocabulary(vocabulary)
        else:
            self._n_features = int(data.X_train.shape[1])
        if self._arch == "cnn":
            self._image = self._image_shape()
        # Network inputs of the training and validation rows, prepared once.
        self._prepared: list[tuple[np.ndarray, np.ndarray]] = []
        self._X_train = self._inputs(data.X_train)
        self._prepared.append((data.X_train, self._X_train))
        if data.X_val is not None and len(data.X_val):
            self._prepared.append((data.X_val, self._inputs(data.X_val)))
        self._y_train = self._encode(data.y_train)
        # Regression targets are learned standardized; see the module docstring.
        self._y_mean, self._y_std = 0.0, 1.0
        if not self._classifier and fit_statistics:
            y = np.asarray(data.y_train, dtype=np.float64)
            self._y_mean = float(y.mean())
            self._y_std = float(y.std()) or 1.0

        tf, keras = self._tf, self._keras = _import_tensorflow()
        self._device, on_gpu, placement_notes = _placement(tf, spec)
        self._notes += placement_notes
        self._mixed = bool(spec.mixed_precision and on_gpu)
        if spec.mixed_precision and not on_gpu:
            self._notes.append("mixed_precision is ignored on the CPU: training in float32")
        if not self._classifier and self._loss_name in ("mae", "huber"):
            self._notes.append(f"the network minimizes {self._loss_name}; training_loss and validation_loss "
                               "are mean squared error")
        if self._arch == "lstm" and spec.regularization.batch_norm:
            self._notes.append("batch_norm does not apply to lstm networks: ignored")
        keras.utils.set_random_seed(spec.seed)
        with tf.device(self._device):
            self._model, self._norm = self._build(fit_statistics)
            self._freeze(spec.frozen_layers)  # before compiling: the optimizer keeps only what trains
            self._optimizer = _optimizer(keras, spec, self._notes)
            if self._mixed:
                # float16 gradients underflow without loss scaling.
                self._optimizer = keras.optimizers.LossScaleOptimizer(self._optimizer)
            self._loss_fn = _loss(keras, self._loss_name)
            self._model.compile(optimizer=self._optimizer, loss=self._loss_fn, jit_compile=False)
            # Built now, not on the first fit, so a restored checkpoint has variables to fill.
            self._optimizer.build(self._model.trainable_variables)
        self._schedule = LearningRateSchedule(spec.lr_scheduler, neural.learning_rate(spec), spec.epochs)

    # -- setup --

    def _check_classes(self) -> None:
        if self._classes is None:
            raise ValueError("classification data must list its classes (TrainingData.classes)")
        if self._data.inference_only:  # loading a model to predict: no training labels to check
            return
        present = np.unique(self._data.y_train)
        if len(present) < 2:
            raise InvalidArgument.field(
                "data_config.label_column",
                f"label column {self._data.label_name!r} has a single class in the training data "
                f"({present.tolist()}); classification needs at least two")
        if self._sigmoid and len(self._classes) > 2:
            raise InvalidArgument.field(f"{TC}.loss_function", f"binary_cross_entropy needs two classes, the "
                                        f"label has {len(self._classes)}; use cross_entropy")
        missing = [c for c in self._classes if c not in set(present.tolist())]
        if missing:
            self._notes.append(f"classes {missing} are not in the training data; the model still outputs "
                               "a probability for them")

    def _image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of model_config.input_shape, checked against the pixel columns."""
        shape = [int(d) for d in self._spec.input_shape]
        pixels = math.prod(shape)
        if pixels != self._n_features:
            raise InvalidArgument.field("model_config.input_shape",
                                        f"input_shape {shape} holds {pixels} pixels but the data has "
                                        f"{self._n_features} feature columns; they must be equal")
        if len(shape) == 2:
            return shape[0], shape[1], 1
        return shape[1], shape[2], shape[0]

    def _text_vocabulary(self, vocabulary: list[str] | None) -> list[str]:
        if vocabulary is not None:
            return [str(token) for token in vocabulary]
        size = neural.int_hyperparameter(self._spec, "vocab_size", DEFAULT_VOCAB_SIZE)
        built = text_encoding.build_vocabulary(_texts(self._data.X_train), size)
        if not built:
            raise InvalidArgument.field("data_config.text_column",
                                        f"the training texts of column {self._spec.data.text_column!r} have no "
                                        "words (letters or digits) to build a vocabulary from")
        return built

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """X in the data layer's layout as the network's input: float32 [n, n_features]
        (tabular, sequence) or int64 token ids [n, max_length] (text)."""
        for source, prepared in self._prepared:
            if X is source:
                return prepared
        if self._kind == "text":
            return text_encoding.encode(_texts(X), self._vocabulary, self._max_length)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self._n_features:
            what = "values per window" if self._kind == "sequence" else "features"
            raise ValueError(f"expected rows of {self._n_features} {what}, got an array of shape {X.shape}")
        return np.ascontiguousarray(X)

    def _class_weights(self) -> dict[int, float] | None:
        setting = self._spec.hyperparameters.get("class_weight")
        if setting is None or not self._classifier or self._data.inference_only:
            return None
        if isinstance(setting, dict):
            # Struct keys are strings; match them against the labels' text.
            known = {str(c) for c in self._classes}
            unknown = [k for k in setting if str(k) not in known]
            if unknown:
                raise InvalidArgument.field(f"{HP}.class_weight", f"no class {unknown[0]!r} in the label column; "
                                            f"classes are {', '.join(sorted(known))}")
        weights = neural.class_weights(self._spec, np.asarray(self._data.y_train), self._classes)
        return {i: float(w) for i, w in enumerate(weights)}

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as the network's targets: class indices (int32, float32 [n, 1] for a sigmoid
        unit) or float32 regression targets [n, 1]."""
        if not self._classifier:
            return np.asarray(y, dtype=np.float32).reshape(-1, 1)
        index = {c: i for i, c in enumerate(self._classes)}
        try:
            codes = np.fromiter((index[v] for v in np.asarray(y).tolist()), dtype=np.int32, count=len(y))
        except KeyError as exc:
            raise ValueError(f"label {exc.args[0]!r} is not one of the classes {self._classes}") from None
        return codes.astype(np.float32).reshape(-1, 1) if self._sigmoid else codes

    def _build(self, adapt: bool) -> tuple[Any, Any]:
        """(model, its Normalization layer or None); see the module docstring for the layers."""
        keras = self._keras
        spec = self._spec
        reg = spec.regularization
        self._hidden_dtype = "mixed_float16" if self._mixed else "float32"
        self._regularizer = keras.regularizers.L1L2(l1=reg.l1, l2=reg.l2) if (reg.l1 or reg.l2) else None
        body, norm, statistics = {"mlp": self._mlp_layers, "cnn": self._cnn_layers,
                                  "text_classifier": self._text_layers, "lstm": self._lstm_layers}[self._arch]()
        if self._classifier:
            units, out_activation = (1, "sigmoid") if self._sigmoid else (len(self._classes), "softmax")
        else:
            units, out_activation = 1, None
        # The output layer computes in float32 even under mixed precision: a float16 softmax
        # or sigmoid loses the small probabilities the log loss depends on.
        body.append(keras.layers.Dense(units, activation=out_activation, kernel_regularizer=self._regularizer,
                                       dtype="float32", name="output"))
        dtype = "int64" if self._kind == "text" else "float32"
        model = keras.Sequential([keras.Input(shape=(self._n_features,), dtype=dtype, name="input"), *body],
                                 name=self._arch)
        if adapt and norm is not None:
            values, constant = statistics()
            norm.adapt(values)
            if np.any(constant):
                # A constant input would be divided by sqrt(1e-7); give it variance 1.
                variance = np.asarray(norm.adapt_variance.numpy())
                norm.adapt_variance.assign(np.where(constant, 1.0, variance).astype(variance.dtype))
                norm.finalize_state()
        return model, norm

    def _freeze(self, names: list[str]) -> None:
        """model_config.frozen_layers: Keras layers (by name, e.g. "dense_0" or "embedding") whose
        weights stay as they are. Unknown names are INVALID_ARGUMENT listing the layers."""
        if not names:
            return
        layers = {layer.name: layer for layer in self._model.layers if layer.trainable_weights}
        for name in names:
            if name not in layers:
                raise InvalidArgument.field("model_config.frozen_layers",
                                            f"{name!r} is not a layer of this {self._arch}: its layers with weights "
                                            f"are {', '.join(layers)}")
        if set(names) >= set(layers):
            raise InvalidArgument.field("model_config.frozen_layers", "freezes every layer: nothing would train")
        count = sum(int(np.prod(w.shape)) for name in names for w in layers[name].trainable_weights)
        total = sum(int(np.prod(w.shape)) for w in self._model.trainable_weights)
        for name in names:
            layers[name].trainable = False
        self._notes.append(f"frozen: {', '.join(names)} ({count:,} of {total:,} parameters)")

    def start_from(self, state: bytes) -> None:
        """Take a parent model's weights and statistics (fine-tuning): the optimizer, schedule and
        epochs stay this run's own."""
        archive, meta = _read_checkpoint(state)
        mine = {k: v for k, v in self._identity().items() if k != "optimizer"}
        for key, wanted in mine.items():
            if meta.get(key) != wanted:
                raise FailedPrecondition(f"the model to fine-tune has {key} {meta.get(key)!r}; this job's is "
                                         f"{wanted!r}")
        _check_shapes("model", self._model.variables, meta)
        _assign("model", self._model.variables, archive)
        if self._norm is not None:
            self._norm.finalize_state()
        self._y_mean, self._y_std = float(meta["y_mean"]), float(meta["y_std"])

    def _hidden_blocks(self, units_list: list[int], prefix: str = "") -> list[Any]:
        """[Dense -> BatchNormalization? -> activation -> Dropout?] per hidden unit count."""
        keras, reg, dtype = self._keras, self._spec.regularization, self._hidden_dtype
        activation = neural.activation(self._spec)
        layers: list[Any] = []
        for i, units in enumerate(units_list):
            layers.append(keras.layers.Dense(units, activation=None if reg.batch_norm else activation,
                                             kernel_regularizer=self._regularizer, dtype=dtype,
                                             name=f"{prefix}dense_{i}"))
            if reg.batch_norm:
                layers.append(keras.layers.BatchNormalization(dtype=dtype, name=f"{prefix}batch_norm_{i}"))
                layers.append(keras.layers.Activation(activation, dtype=dtype, name=f"{prefix}activation_{i}"))
            if reg.dropout:
                layers.append(keras.layers.Dropout(reg.dropout, dtype=dtype, name=f"{prefix}dropout_{i}"))
        return layers

    def _hidden_units(self) -> list[int]:
        if self._arch in DEFAULT_HIDDEN_UNITS:
            return [int(u) for u in self._spec.hyperparameters.get("hidden_units", DEFAULT_HIDDEN_UNITS[self._arch])]
        return neural.hidden_units(self._spec)

    def _mlp_layers(self) -> tuple[list[Any], Any, Any]:
        norm = self._keras.layers.Normalization(name="normalization")

        def statistics() -> tuple[np.ndarray, np.ndarray]:
            return self._X_train, np.ptp(self._data.X_train, axis=0) == 0

        return [norm, *self._hidden_blocks(self._hidden_units())], norm, statistics

    def _cnn_layers(self) -> tuple[list[Any], Any, Any]:
        keras, spec, dtype = self._keras, self._spec, self._hidden_dtype
        reg = spec.regularization
        height, width, channels = self._image
        if len(spec.input_shape) == 3:
            # The pixel columns are channel-major ([C, H, W]); Keras convolves H x W x C.
            layers = [keras.layers.Reshape((channels, height, width), name="reshape"),
                      keras.layers.Permute((2, 3, 1), name="channels_last")]
        else:
            layers = [keras.layers.Reshape((height, width, 1), name="reshape")]
        norm = keras.layers.Normalization(axis=-1, name="normalization")
        layers.append(norm)
        activation = neural.activation(spec)
        kernel = neural.int_hyperparameter(spec, "kernel_size", DEFAULT_KERNEL_SIZE)
        filters = [int(f) for f in spec.hyperparameters.get("filters", DEFAULT_FILTERS)]
        h, w = height, width
        for i, count in enumerate(filters):
            layers.append(keras.layers.Conv2D(count, kernel, padding="same",
                                              activation=None if reg.batch_norm else activation,
                                              kernel_regularizer=self._regularizer, dtype=dtype, name=f"conv_{i}"))
            if reg.batch_norm:
                layers.append(keras.layers.BatchNormalization(dtype=dtype, name=f"conv_batch_norm_{i}"))
                layers.append(keras.layers.Activation(activation, dtype=dtype, name=f"conv_activation_{i}"))
            pool = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
            if pool != (1, 1):
                layers.append(keras.layers.MaxPooling2D(pool, dtype=dtype, name=f"pool_{i}"))
                h, w = h // pool[0], w // pool[1]
        layers.append(keras.layers.Flatten(dtype=dtype, name="flatten"))
        layers += self._hidden_blocks(self._hidden_units())

        def statistics() -> tuple[np.ndarray, np.ndarray]:
            images = self._images(self._X_train)
            return images, np.ptp(images.reshape(-1, channels), axis=0) == 0

        return layers, norm, statistics

    def _images(self, X: np.ndarray) -> np.ndarray:
        """Pixel rows as [n, H, W, C] images (what the network's Reshape/Permute make of them)."""
        height, width, channels = self._image
        if len(self._spec.input_shape) == 3:
            return X.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
        return X.reshape(-1, height, width, 1)

    def _text_layers(self) -> tuple[list[Any], Any, Any]:
        keras, dtype = self._keras, self._hidden_dtype
        dim = neural.int_hyperparameter(self._spec, "embedding_dim", DEFAULT_EMBEDDING_DIM)
        layers = [keras.layers.Embedding(len(self._vocabulary) + 2, dim, mask_zero=True, dtype=dtype,
                                         name="embedding"),
                  _masked_mean(keras)(dtype=dtype, name="masked_mean"),
                  *self._hidden_blocks(self._hidden_units())]
        return layers, None, None

    def _lstm_layers(self) -> tuple[list[Any], Any, Any]:
        keras, spec, dtype = self._keras, self._spec, self._hidden_dtype
        norm = keras.layers.Normalization(axis=None, name="normalization")
        layers = [norm, keras.layers.Reshape((self._n_features, 1), name="reshape")]
        size = neural.int_hyperparameter(spec, "hidden_size", DEFAULT_HIDDEN_SIZE)
        count = neural.int_hyperparameter(spec, "num_layers", DEFAULT_NUM_LAYERS)
        for i in range(count):
            layers.append(keras.layers.LSTM(size, return_sequences=i < count - 1,
                                            kernel_regularizer=self._regularizer, dtype=dtype, name=f"lstm_{i}"))
            if spec.regularization.dropout:
                layers.append(keras.layers.Dropout(spec.regularization.dropout, dtype=dtype, name=f"dropout_{i}"))

        def statistics() -> tuple[np.ndarray, np.ndarray]:
            return self._X_train, np.ptp(self._X_train) == 0

        return layers, norm, statistics

    # -- predictions --

    def _raw(self, X: np.ndarray) -> np.ndarray:
        """The network's output on X (the data layer's layout), float64, in chunks."""
        tf = self._tf
        X = self._inputs(X)
        parts = []
        with tf.device(self._device):
            for start in range(0, len(X), _PREDICT_CHUNK):
                chunk = tf.constant(X[start:start + _PREDICT_CHUNK])
                parts.append(np.asarray(self._model(chunk, training=False), dtype=np.float64))
        units = 1 if (self._sigmoid or not self._classifier) else len(self._classes)
        return np.concatenate(parts) if parts else np.zeros((0, units))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities [n, n_classes], columns in class_labels order."""
        if not self._classifier:
            raise ValueError("a regressor has no class probabilities; use predict")
        out = self._raw(X)
        if self._sigmoid:
            return np.concatenate([1.0 - out, out], axis=1)
        # float32 softmax rows sum to 1 within ~1e-7, outside log_loss's float64 check.
        return out / out.sum(axis=1, keepdims=True)

    def _values(self, X: np.ndarray) -> np.ndarray:
        """Regression and forecast values [n], in target units."""
        return self._raw(X)[:, 0] * self._y_std + self._y_mean

    def predict(self, X: np.ndarray) -> Prediction:
        """Classifiers: the class of the largest probability, probabilities in class_labels
        order (predict_proba); regressors and forecasters: values in target units."""
        self._require_trained()
        if self._classifier:
            proba = self.predict_proba(X)
            return Prediction(np.asarray(self._classes)[np.argmax(proba, axis=1)], proba)
        return Prediction(self._values(X))

    def _measure(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if self._classifier:
            return classification_metrics(y, self.predict_proba(X), self._classes)
        return regression_metrics(y, self._values(X))

    # -- TrainingRun --

    def train_epoch(self, epoch: int) -> EpochResult:
        if epoch != self._epoch + 1:
            raise ValueError(f"epoch {epoch} requested; the run is at epoch {self._epoch}, "
                             f"so the next is {self._epoch + 1}")
        if epoch > self.total_epochs:
            raise ValueError(f"the run is complete after epoch {self._epoch}; there is no epoch {epoch}")
        tf = self._tf
        logs = list(self._notes) if epoch == 1 else []
        lr = self._schedule.lr_for_epoch(epoch)
        self._optimizer.learning_rate = lr
        order = np.random.default_rng((self._spec.seed, epoch)).permutation(len(self._y_train))
        X, y = self._X_train[order], self._targets()[order]
        with tf.device(self._device):
            history = self._model.fit(X, y, batch_size=self._spec.batch_size, epochs=1, shuffle=False,
                                      class_weight=self._class_weight, verbose=0)
        objective = float(history.history["loss"][-1])
        if not math.isfinite(objective):
            raise RuntimeError(f"training diverged in epoch {epoch}: the training loss is {objective}; lower "
                               f"{TC}.learning_rate or set {TC}.regularization.gradient_clip_norm")
        first = slice(0, self._spec.batch_size)
        gradient_norm = self._gradient_norm(X[first], y[first])

        data = self._data
        metrics = {"training_loss": self._measure(data.X_train, data.y_train)["loss"]}
        X_val, y_val = data.X_val, data.y_val
        if X_val is None or y_val is None or len(y_val) == 0:
            X_val, y_val = data.X_train, data.y_train
            if not self._announced_no_validation:
                logs.append("no validation data: validation metrics are computed on the training data")
                self._announced_no_validation = True
        validation = self._measure(X_val, y_val)
        metrics["validation_loss"] = validation.pop("loss")
        metrics.update(validation)
        metrics["learning_rate"] = float(lr)
        metrics["gradient_norm"] = gradient_norm
        self._schedule.observe(epoch, metrics)
        self._epoch = epoch
        return EpochResult(metrics=metrics, extra={"train_objective": objective}, logs=logs)

    def _targets(self) -> np.ndarray:
        if self._classifier:
            return self._y_train
        return ((self._y_train - self._y_mean) / self._y_std).astype(np.float32)

    def _gradient_norm(self, X: np.ndarray, y: np.ndarray) -> float:
        """Global norm of the objective's gradient on one batch; see the module docstring."""
        tf = self._tf
        weights = None
        if self._class_weight is not None:
            codes = y.reshape(-1).astype(np.int64)
            weights = tf.constant(np.array([self._class_weight[c] for c in codes.tolist()], dtype=np.float32))
        with tf.device(self._device):
            variables = self._model.trainable_variables
            with tf.GradientTape() as tape:
                out = self._model(tf.constant(X), training=False)
                loss = self._loss_fn(tf.constant(y), out, sample_weight=weights)
                penalties = self._model.losses
                if penalties:
                    loss = loss + tf.add_n([tf.cast(p, loss.dtype) for p in penalties])
            grads = [g for g in tape.gradient(loss, variables) if g is not None]
            return float(tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads]))

    # -- checkpoints --

    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be loaded into this run."""
        spec = self._spec
        identity = {
            "model_type": spec.model_type,
            "architecture": self._arch,
            "n_features": self._n_features,  # max_length for text, the window for sequences
            "classes": [str(c) for c in self._classes] if self._classes is not None else None,
            "loss": self._loss_name,
            "optimizer": neural.optimizer_name(spec),
        }
        if self._arch == "cnn":
            identity["input_shape"] = [int(d) for d in spec.input_shape]
        return identity

    def state_bytes(self) -> bytes:
        """An .npz archive: every model variable (model.get_weights() plus the dropout seed
        generators' state), every optimizer variable, and JSON metadata with the epoch, the
        learning-rate schedule's state, the regression target statistics and a text
        classifier's vocabulary."""
        model_vars = [np.asarray(v.numpy()) for v in self._model.variables]
        optimizer_vars = [np.asarray(v.numpy()) for v in self._optimizer.variables]
        meta = {
            "format": _STATE_FORMAT,
            "framework": "tensorflow",
            **self._identity(),
            "epoch": self._epoch,
            "schedule": self._schedule.state_dict(),
            "y_mean": self._y_mean,
            "y_std": self._y_std,
            "vocabulary": self._vocabulary,
            "model_variables": [list(a.shape) for a in model_vars],
            "optimizer_variables": [list(a.shape) for a in optimizer_vars],
        }
        arrays = {"meta": np.array(json.dumps(meta))}
        arrays.update({f"model_{i:04d}": a for i, a in enumerate(model_vars)})
        arrays.update({f"optimizer_{i:04d}": a for i, a in enumerate(optimizer_vars)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def restore(self, state: bytes) -> None:
        archive, meta = _read_checkpoint(state)
        mine = self._identity()
        for key, wanted in mine.items():
            if meta.get(key) != wanted:
                raise FailedPrecondition(f"the checkpoint's {key} is {meta.get(key)!r}; this job's is {wanted!r}")
        if meta.get("vocabulary", []) != self._vocabulary:
            raise FailedPrecondition("the checkpoint's vocabulary differs from this run's; load it with "
                                     "TensorFlowAdapter.load_run, which builds the run on the checkpoint's vocabulary")
        model_vars, optimizer_vars = self._model.variables, self._optimizer.variables
        for kind, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
            _check_shapes(kind, variables, meta)  # all of them first: nothing is half restored
        for kind, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
            _assign(kind, variables, archive)
        # The Normalization layer's eager copies of its statistics follow the variables.
        if self._norm is not None:
            self._norm.finalize_state()
        self._y_mean, self._y_std = float(meta["y_mean"]), float(meta["y_std"])
        self._schedule.load_state_dict(meta["schedule"])
        self._epoch = int(meta["epoch"])

    @property
    def epoch(self) -> int:
        """The last trained epoch (0 before the first)."""
        return self._epoch

    @property
    def input_preprocessing(self) -> dict[str, Any]:
        """What feeding the exported model needs beyond the data layer's preprocessing (the
        worker merges it into the model info): a text classifier's vocabulary (token id i + 2
        is vocabulary[i]; 0 pads, 1 is unknown), max_length and the tokenizer module."""
        if self._kind == "text":
            return {"vocabulary": list(self._vocabulary), "max_length": self._max_length,
                    "tokenizer": "engine.data.text"}
        return {}

    @property
    def class_labels(self) -> list[Any] | None:
        """Class labels in the order of the model's (and the exports') probability columns;
        None for regressors."""
        return list(self._classes) if self._classifier else None

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        self._require_trained()
        metrics = self._measure(X, y)
        metrics["validation_loss"] = metrics.pop("loss")
        return metrics

    # -- export --

    @property
    def export_formats(self) -> list[str]:
        return ["onnx", "savedmodel"]

    def export(self, fmt: str) -> bytes:
        name = self._export_name(fmt, "tensorflow")
        self._require_trained()
        return self._onnx() if name == "onnx" else self._savedmodel()

    def _serving_function(self) -> Any:
        """The tf.function both exports hold: the network's input in, parity.py's output names out."""
        tf = self._tf
        model, norm = self._model, self._norm
        classifier, sigmoid = self._classifier, self._sigmoid
        classes = np.asarray(self._classes) if classifier else None
        y_mean, y_std = self._y_mean, self._y_std
        text = self._kind == "text"
        n_ids = len(self._vocabulary) + 2
        dtype = tf.int64 if text else tf.float32

        @tf.function(input_signature=[tf.TensorSpec([None, self._n_features], dtype, name="input")])
        def serve(x):
            if norm is not None:
                norm.finalize_state()  # see _exporting
            if text:
                # An id the embedding does not have is an unknown word, not an error.
                unknown = tf.fill(tf.shape(x), tf.constant(text_encoding.UNKNOWN, tf.int64))
                x = tf.where(tf.logical_or(x < 0, x >= n_ids), unknown, x)
            out = tf.cast(model(x, training=False), tf.float32)
            if not classifier:
                return {"variable": out * tf.constant(y_std, tf.float32) + tf.constant(y_mean, tf.float32)}
            probabilities = tf.concat([1.0 - out, out], axis=1) if sigmoid else out
            # Constants made inside the trace become graph constants; captured ones would
            # become inputs of the ONNX graph.
            labels = tf.constant(classes)
            return {"label": tf.gather(labels, tf.argmax(probabilities, axis=1)), "probabilities": probabilities}

        return serve

    def _reference(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X) if self._classifier else self._values(X)

    def _onnx(self) -> bytes:
        import tf2onnx

        serve = self._serving_function()
        with _exporting(self._model, self._norm), self._tf.device("/CPU:0"):
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature)
        data = proto.SerializeToString()
        X = self._data.X_val if self._data.X_val is not None and len(self._data.X_val) else self._data.X_train
        X = X[:_PARITY_ROWS]
        reference = self._reference(X)
        tolerance = ONNX_TOLERANCE_MIXED if self._mixed else ONNX_TOLERANCE
        if not self._classifier:
            tolerance *= max(1.0, float(np.abs(reference).max()))
        got = np.asarray(self.onnx_outputs(data, X)["probabilities" if self._classifier else "variable"],
                         dtype=np.float64)
        if got.shape == (len(X), 1) and reference.ndim == 1:
            got = got[:, 0]
        if got.shape != reference.shape:
            raise RuntimeError(f"ONNX export check failed: the output has shape {got.shape}, the model's "
                               f"predictions {reference.shape}")
        difference = float(np.max(np.abs(got - reference))) if got.size else 0.0
        if not difference <= tolerance:  # also catches NaN
            raise RuntimeError(f"ONNX export check failed: max difference {difference:.3g} > tolerance "
                               f"{tolerance:g}")
        return data

    def onnx_outputs(self, onnx_bytes: bytes, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of an ONNX export of this run on X (the data layer's layout; texts are
        encoded to the int64 token ids the export takes), by name, from onnxruntime."""
        from engine.export.parity import onnx_predict

        return onnx_predict(onnx_bytes, self._inputs(X))

    def _savedmodel(self) -> bytes:
        keras = self._keras
        serve = self._serving_function()
        with tempfile.TemporaryDirectory(prefix="forge-savedmodel-") as tmp:
            path = Path(tmp) / "savedmodel"
            with _exporting(self._model, self._norm), self._tf.device("/CPU:0"):
                archive = keras.export.ExportArchive()
                archive.track(self._model)
                archive.add_endpoint("serve", serve)
                archive.write_out(str(path), verbose=False)
            return _tar_directory(path)


def _check_shapes(kind: str, variables: list[Any], meta: dict[str, Any]) -> None:
    shapes = [list(v.shape) for v in variables]
    if meta[f"{kind}_variables"] != shapes:
        raise FailedPrecondition(f"the checkpoint's {kind} variables have shapes {meta[f'{kind}_variables']}; "
                                 f"this job's network has {shapes} (hidden_units, another "
                                 "hyperparameter or regularization differs)")


def _assign(kind: str, variables: list[Any], archive: Any) -> None:
    for i, variable in enumerate(variables):
        variable.assign(archive[f"{kind}_{i:04d}"])


def _read_checkpoint(state: bytes) -> tuple[Any, dict[str, Any]]:
    """(the .npz archive, its metadata) of a checkpoint of this adapter; FailedPrecondition if it is not one."""
    try:
        archive = np.load(io.BytesIO(state), allow_pickle=False)
        meta = json.loads(str(archive["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise FailedPrecondition(f"the checkpoint is not a tensorflow adapter checkpoint: {exc}") from None
    if meta.get("framework") != "tensorflow" or meta.get("format") != _STATE_FORMAT:
        raise FailedPrecondition("the checkpoint was not written by this version of the tensorflow adapter")
    return archive, meta


def _tar_directory(root: Path) -> bytes:
    """The files under `root` as an uncompressed tar, paths relative to root, with fixed
    owners and times so the archive depends only on the files' contents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


class TensorFlowAdapter(FrameworkAdapter):
    name = "tensorflow"
    fine_tuning = True
    freezes_layers = True
    input_kinds = ("tabular", "text", "interactions", "sequence")

    def validate(self, spec: TrainingSpec) -> None:
        _validate(spec)

    def planned_epochs(self, spec: TrainingSpec) -> int:
        """Every epoch is one pass over the data, so spec.epochs; no TensorFlow import."""
        return spec.epochs

    def create_run(self, spec: TrainingSpec, data: TrainingData) -> TensorFlowRun:
        return TensorFlowRun(spec, data)

    def load_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> TensorFlowRun:
        # The statistics (feature mean/variance, target mean/std) and a text classifier's
        # vocabulary come from the checkpoint; a fine-tuning job's network is its parent's.
        run = self._run_of(neural.parent_network_spec(spec), data, state)
        run.restore(state)
        return run

    def fine_tune_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> TensorFlowRun:
        run = self._run_of(neural.parent_network_spec(spec), data, state)
        run.start_from(state)
        return run

    @staticmethod
    def _run_of(spec: TrainingSpec, data: TrainingData, state: bytes) -> TensorFlowRun:
        """A run to fill from `state`: no statistics fitted, a text classifier's vocabulary the state's."""
        _, meta = _read_checkpoint(state)
        vocabulary = meta.get("vocabulary") if spec.architecture == "text_classifier" else None
        return TensorFlowRun(spec, data, fit_statistics=False, vocabulary=vocabulary)

    def versions(self) -> dict[str, str]:
        tf, keras = _import_tensorflow()
        import onnx
        import tf2onnx

        return {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        }
