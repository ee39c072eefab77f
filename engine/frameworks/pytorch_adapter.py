"""PyTorch behind the FrameworkAdapter contract: feed-forward, convolutional, text, recurrent
and matrix-factorization networks.

Each architecture is a torch.nn.Module that takes exactly what its ONNX export takes (one
input named "input", dynamic batch axis) and outputs logits (classifiers) or predictions
[batch, 1] in target units (everything else):

- "mlp" (classification, regression; tabular float32 [batch, n_features]):
    Standardize -> [Linear -> BatchNorm1d? -> activation -> Dropout?] per hidden layer -> Linear
    (-> Rescale for regression)
- "cnn" (classification; images as pixel columns, float32 [batch, n_features]):
    Standardize (per pixel) -> Unflatten to model_config.input_shape ([H, W] is one channel)
    -> per entry of filters (default [16, 32]): Conv2d(kernel_size, default 3, "same" padding)
       -> BatchNorm2d? -> activation -> MaxPool2d(2) on each side still at least 2 pixels long
    -> Flatten -> the mlp's hidden layers (hidden_units, default [64]) -> Linear
- "text_classifier" (classification; text): engine.data.text encodes each text as token ids
  int64 [batch, max_length] (max_length default 64) with the vocabulary of the training texts
  (vocab_size default 5000, ids 0 padding and 1 unknown), then
    Embedding(padding_idx=0, embedding_dim default 32) -> mean over the non-padding tokens
    -> hidden layers (default [32]) -> Linear
  This is nn.EmbeddingBag(mode="mean") written out. EmbeddingBag takes flat ids plus per-text
  offsets, which does not fit a fixed [batch, max_length] input, and torch's ONNX exporter
  turns it into a Loop over the texts and refuses padding_idx altogether; the embedding and
  masked mean export as plain Gather / Mul / ReduceSum / Div and compute the same mean.
- "lstm" (forecasting; float32 [batch, window] past values, oldest first):
    standardize with the training windows' mean and std (buffers) -> LSTM(input_size 1,
    hidden_size default 32, num_layers default 1, batch_first; dropout between layers)
    -> Linear on the last step's output -> * std + mean (series units)
- "matrix_factorization" (recommendation; int64 [batch, 2] of (user index, item index)):
    global_mean + user_bias + item_bias + dot(user_factors, item_factors), embedding_dim
    default 16. The run maps raw ids to indices with id maps of the training data (users
    1..U and items 1..I in sorted id order); index 0 stands for any id the training data did
    not have. Its factors and bias are zero and never trained (padding_idx), so an unknown
    user is predicted as global mean + the item's bias, an unknown item as global mean + the
    user's bias.

Standardize and Rescale hold training statistics as buffers, so networks, checkpoints and
exports take raw values. Regressors (mlp regression, lstm) learn in standardized target units,
so one learning rate suits any target scale. Classifiers output one logit per class
(cross_entropy) or a single logit for the second class (binary_cross_entropy on two classes).

What an exported model needs beyond the data layer's preprocessing is `input_preprocessing`
(merged into the job's model info, sent as ExportMetadata.preprocessing):
  text_classifier:      {"vocabulary": [token of id 2, token of id 3, ...], "max_length": n,
                         "tokenizer": "engine.data.text"}
  matrix_factorization: {"user_index": {user id: index}, "item_index": {item id: index}}
                        (indices from 1; feed 0 for an id missing from the map)
The "torch" export's config carries the same, plus everything build_module needs.

The "torch" export is one torch.save dict that torch.load(path, weights_only=True) reads:
  "state_dict": the network's weights and buffers (for fine-tuning: build_module(config)),
  "config":     the network config above,
  "program":    bytes of torch.export.save of the network as the ONNX export wraps it (class
                probabilities for classifiers, predictions [batch, 1] otherwise), exported
                with torch.export.export on CPU, batch axis dynamic; it needs only torch:
                    module = torch.export.load(io.BytesIO(obj["program"])).module()
                    with torch.no_grad():
                        out = module(x)  # x as the ONNX export takes it
Both exports are checked against the network's predictions on held-out rows before they are
returned; a mismatch fails the export.

One epoch is one pass over the training rows in mini-batches of batch_size, shuffled by a
torch.Generator seeded from (seed, epoch), so a run resumed from a checkpoint shuffles exactly
as an uninterrupted one. With gradient_accumulation_steps = k > 1 the optimizer steps once
every k batches, on the mean gradient of those batches; the last group of an epoch may be
shorter and steps anyway, so no gradient crosses an epoch boundary (the boundary checkpoints
are taken at).

Losses. Regression losses (regression, forecasting, recommendation) are computed in
standardized target units (the prediction error divided by the training targets' std; for
lstm the training windows' std) and reported in target units: mse and mae exactly, huber as
the Huber loss whose delta is that std. training_loss is the mean of the epoch's batch losses
(in training mode, before the optimizer step of each batch); validation_loss is the same loss
on the validation rows in evaluation mode; both include class weights and neither includes
the L1 penalty (on every weight matrix: linear, convolution, embedding and LSTM weights), so
the two curves measure the same thing.

Dropout draws from torch's global generator; each run keeps its own generator state, swaps
it in for the epoch (torch.random.fork_rng) and checkpoints it, so resuming is exact and
runs sharing a process do not disturb each other.

validate() runs in the server process, so torch, onnx and onnxruntime are imported only
inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import math
import platform
import warnings
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np

from engine.callbacks.lr_schedule import LearningRateSchedule
from engine.data import text
from engine.errors import FailedPrecondition, InvalidArgument
from engine.export.parity import onnx_predict
from engine.frameworks import neural
from engine.frameworks.base import EpochResult, FrameworkAdapter, Prediction, TrainingData, TrainingRun
from engine.frameworks.metrics import class_codes, classification_metrics, regression_metrics
from engine.jobs.spec import TrainingSpec

TC = "training_config"
HP = "model_config.hyperparameters"
ARCHITECTURES = ("mlp", "cnn", "text_classifier", "lstm", "matrix_factorization")
# Defaults of the architecture hyperparameters (mlp's hidden_units default is neural's [64, 32]).
DEFAULT_FILTERS = [16, 32]
DEFAULT_KERNEL_SIZE = 3
DEFAULT_HIDDEN_UNITS = {"cnn": [64], "text_classifier": [32]}
DEFAULT_VOCAB_SIZE = 5000
DEFAULT_MAX_LENGTH = 64
DEFAULT_EMBEDDING_DIM = {"text_classifier": 32, "matrix_factorization": 16}
DEFAULT_HIDDEN_SIZE = 32
DEFAULT_NUM_LAYERS = 1
# Starting scale of the matrix-factorization factors (normal, mean 0): small, so the first
# predictions are about the global mean.
_FACTOR_INIT_STD = 0.1
_STATE_FORMAT = 1
# The TorchScript exporter writes opsets 7..20; 17 runs in every onnxruntime of the last
# years and has every operator these networks need (LSTM included).
ONNX_OPSET = 17
# Largest absolute difference allowed between the exported ONNX model and the network
# itself: class probabilities, or regression predictions per unit of the largest prediction
# magnitude (float32 keeps about 7 significant digits whatever the target scale).
ONNX_TOLERANCE = 1e-4
# The same bound for the "torch" export's program. It runs the network's own float32 operators
# on CPU (observed on CPU: at most ~1e-7, from the float32 softmax / sigmoid where the run
# takes them in float64); the run itself may predict on CUDA.
PROGRAM_TOLERANCE = 1e-4
# Rows checked for export parity and rows per forward pass in evaluation.
_PARITY_ROWS = 4096
_EVAL_CHUNK = 65536
# Below this many multiply-adds per batch an epoch runs on one thread. Measured on 2 cores:
# small networks gain nothing from a second thread (breast cancer, [16], batch 64: 0.08 s
# per 10 epochs either way), while with another process busy on the machine, intra-op
# threads that outnumber the free cores spin-wait on each other (a [1024, 1024] network
# ran 10x slower on 2 threads than on 1). Bigger networks keep torch's thread count
# ([1024, 1024], batch 512, idle machine: 0.46 s on 2 threads, 0.78 s on 1).
_ONE_THREAD_BELOW = 1_000_000
# Config entries a checkpoint must agree on with the job that loads it, in the order a
# difference is reported; the input maps come from the data (and are too long to quote).
_INPUT_MAP_KEYS = ("vocabulary", "user_index", "item_index")
_NETWORK_KEYS = ("architecture", "task", *_INPUT_MAP_KEYS, "n_features", "input_shape", "filters", "kernel_size",
                 "hidden_units", "activation", "batch_norm", "dropout", "n_outputs", "classes", "n_tokens",
                 "max_length", "embedding_dim", "window", "hidden_size", "num_layers", "n_users", "n_items")


# --- validation (server side: no torch) ---------------------------------------------------


metric_names = neural.metric_names


def _validate(spec: TrainingSpec) -> None:
    """Everything about `spec` this adapter can check without data; InvalidArgument names the field."""
    neural.validate_network(spec, "pytorch", ARCHITECTURES)
    # What the shared validation leaves to this framework:
    reg = spec.regularization
    if reg.l2 and reg.weight_decay:
        raise InvalidArgument.field(f"{TC}.regularization.l2",
                                    "pytorch applies l2 as the optimizer's weight decay, so l2 and weight_decay "
                                    "would set the same thing; set only one of them")


def _epoch_seed(seed: int, epoch: int) -> int:
    """The shuffling seed of `epoch`: a function of (seed, epoch) only, so no generator state
    has to be checkpointed. Negative int64 seeds wrap the way torch.manual_seed wraps them."""
    return int(np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1, np.uint64)[0])


def _image_shape(shape: list[int]) -> list[int]:
    """model_config.input_shape as [channels, height, width]."""
    return [1, *map(int, shape)] if len(shape) == 2 else [int(d) for d in shape]


def _pooled(size: int) -> int:
    """The pooling window along a side of `size` pixels: 2 while the side allows, else 1."""
    return 2 if size >= 2 else 1


# --- the networks (torch is imported here, in the worker) ---------------------------------


@functools.cache
def _layers() -> SimpleNamespace:
    """Module classes of this adapter; defined on first use so that importing the adapter
    module does not import torch."""
    import torch
    from torch import nn

    class Standardize(nn.Module):
        """(x - mean) / std with the training features' statistics as buffers."""

        def __init__(self, n_features: int):
            super().__init__()
            self.register_buffer("mean", torch.zeros(n_features))
            self.register_buffer("std", torch.ones(n_features))

        def forward(self, x):
            return (x - self.mean) / self.std

    class Rescale(nn.Module):
        """z * std + mean: standardized predictions back to target units."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(1))
            self.register_buffer("std", torch.ones(1))

        def forward(self, z):
            return z * self.std + self.mean

    class TextClassifier(nn.Module):
        """Token ids [batch, max_length] -> logits: the mean embedding of the non-padding
        tokens (EmbeddingBag's mean, written so that it exports to ONNX) through `head`."""

        def __init__(self, n_tokens: int, embedding_dim: int, head: nn.Module):
            super().__init__()
            self.embedding = nn.Embedding(n_tokens, embedding_dim, padding_idx=text.PAD)
            self.head = head

        def forward(self, ids):
            vectors = self.embedding(ids)
            mask = (ids != text.PAD).unsqueeze(-1).to(vectors.dtype)
            # A text without a known-or-unknown token (empty) averages nothing: a zero vector.
            mean = (vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return self.head(mean)

    class SequenceRegressor(nn.Module):
        """Past values [batch, window] -> the next value [batch, 1], in series units."""

        def __init__(self, hidden_size: int, num_layers: int, dropout: float):
            super().__init__()
            self.register_buffer("mean", torch.zeros(1))
            self.register_buffer("std", torch.ones(1))
            self.lstm = nn.LSTM(1, hidden_size, num_layers=num_layers, batch_first=True,
                                dropout=dropout if num_layers > 1 else 0.0)
            self.output = nn.Linear(hidden_size, 1)

        def forward(self, x):
            z = ((x - self.mean) / self.std).unsqueeze(-1)
            steps, _ = self.lstm(z)
            return self.output(steps[:, -1]) * self.std + self.mean

    class MatrixFactorization(nn.Module):
        """(user index, item index) [batch, 2] -> rating [batch, 1]. Index 0 (unknown) has
        zero factors and bias that no gradient reaches (padding_idx)."""

        def __init__(self, n_users: int, n_items: int, embedding_dim: int):
            super().__init__()
            self.register_buffer("global_mean", torch.zeros(1))
            self.user_factors = nn.Embedding(n_users + 1, embedding_dim, padding_idx=0)
            self.item_factors = nn.Embedding(n_items + 1, embedding_dim, padding_idx=0)
            self.user_bias = nn.Embedding(n_users + 1, 1, padding_idx=0)
            self.item_bias = nn.Embedding(n_items + 1, 1, padding_idx=0)
            with torch.no_grad():
                for factors in (self.user_factors, self.item_factors):
                    factors.weight.normal_(0.0, _FACTOR_INIT_STD)
                    factors.weight[0].zero_()
                self.user_bias.weight.zero_()
                self.item_bias.weight.zero_()

        def forward(self, pairs):
            users, items = pairs[:, 0], pairs[:, 1]
            dot = (self.user_factors(users) * self.item_factors(items)).sum(dim=1, keepdim=True)
            return self.global_mean + self.user_bias(users) + self.item_bias(items) + dot

    class Probabilities(nn.Module):
        """Class probabilities [batch, n_classes] of a classifier's logits."""

        def __init__(self, net: nn.Module, binary: bool):
            super().__init__()
            self.net = net
            self.binary = binary

        def forward(self, x):
            z = self.net(x)
            if self.binary:
                p = torch.sigmoid(z)
                return torch.cat([1 - p, p], dim=1)
            return torch.softmax(z, dim=1)

    return SimpleNamespace(Standardize=Standardize, Rescale=Rescale, TextClassifier=TextClassifier,
                           SequenceRegressor=SequenceRegressor, MatrixFactorization=MatrixFactorization,
                           Probabilities=Probabilities)


def _activation(name: str) -> Any:
    from torch import nn

    return {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}[name]()


def _dense(width: int, config: dict[str, Any]) -> list[Any]:
    """[Linear -> BatchNorm1d? -> activation -> Dropout?] per hidden layer -> Linear to the outputs."""
    from torch import nn

    modules: list[nn.Module] = []
    for units in config["hidden_units"]:
        modules.append(nn.Linear(width, units))
        if config["batch_norm"]:
            modules.append(nn.BatchNorm1d(units))
        modules.append(_activation(config["activation"]))
        if config["dropout"] > 0:
            modules.append(nn.Dropout(config["dropout"]))
        width = units
    modules.append(nn.Linear(width, config["n_outputs"]))
    return modules


def _build_mlp(config: dict[str, Any]) -> Any:
    from torch import nn

    layers = _layers()
    modules = [layers.Standardize(config["n_features"]), *_dense(config["n_features"], config)]
    if config["task"] == "regression":
        modules.append(layers.Rescale())
    return nn.Sequential(*modules)


def _build_cnn(config: dict[str, Any]) -> Any:
    from torch import nn

    channels, height, width = config["input_shape"]
    kernel = config["kernel_size"]
    modules: list[nn.Module] = [_layers().Standardize(config["n_features"]),
                                nn.Unflatten(1, (channels, height, width))]
    for filters in config["filters"]:
        modules.append(nn.Conv2d(channels, filters, kernel, padding=kernel // 2))
        if config["batch_norm"]:
            modules.append(nn.BatchNorm2d(filters))
        modules.append(_activation(config["activation"]))
        pool = (_pooled(height), _pooled(width))
        if pool != (1, 1):
            modules.append(nn.MaxPool2d(pool))
            height, width = height // pool[0], width // pool[1]
        channels = filters
    modules.append(nn.Flatten())
    modules.extend(_dense(channels * height * width, config))
    return nn.Sequential(*modules)


def _build_text_classifier(config: dict[str, Any]) -> Any:
    from torch import nn

    head = nn.Sequential(*_dense(config["embedding_dim"], config))
    return _layers().TextClassifier(config["n_tokens"], config["embedding_dim"], head)


def _build_lstm(config: dict[str, Any]) -> Any:
    return _layers().SequenceRegressor(config["hidden_size"], config["num_layers"], config["dropout"])


def _build_matrix_factorization(config: dict[str, Any]) -> Any:
    return _layers().MatrixFactorization(config["n_users"], config["n_items"], config["embedding_dim"])


_BUILDERS = {"mlp": _build_mlp, "cnn": _build_cnn, "text_classifier": _build_text_classifier,
             "lstm": _build_lstm, "matrix_factorization": _build_matrix_factorization}


def build_module(config: dict[str, Any]) -> Any:
    """The nn.Module described by `config` (the "config" of a "torch" export), with fresh
    parameters; load the export's "state_dict" into it.

    It takes what the ONNX export takes: raw float32 features [batch, n_features] (mlp, cnn),
    token ids int64 [batch, max_length] encoded with config["vocabulary"] by engine.data.text
    (text_classifier), past values float32 [batch, window] (lstm), or int64 [batch, 2] (user
    index, item index) from config["user_index"] / config["item_index"], 0 for an unknown id
    (matrix_factorization). Classifiers output logits: n_outputs = len(classes) for softmax, or
    1 logit whose sigmoid is the probability of classes[1]. The others output predictions in
    target units [batch, 1].
    """
    builder = _BUILDERS.get(config.get("architecture"))
    if builder is None:
        raise ValueError(f"build_module builds architectures {', '.join(ARCHITECTURES)}, "
                         f"not {config.get('architecture')!r}")
    return builder(config)


def _multiply_adds(config: dict[str, Any]) -> int:
    """About how many multiply-adds one row costs the network (for the thread choice)."""
    arch = config["architecture"]

    def dense(width: int) -> int:
        total = 0
        for units in [*config["hidden_units"], config["n_outputs"]]:
            total, width = total + width * units, units
        return total

    if arch == "mlp":
        widest = max([config["n_features"], *config["hidden_units"]])
        return widest * (len(config["hidden_units"]) + 1) * widest
    if arch == "cnn":
        channels, height, width = config["input_shape"]
        total = 0
        for filters in config["filters"]:
            total += height * width * channels * filters * config["kernel_size"] ** 2
            height, width, channels = height // _pooled(height), width // _pooled(width), filters
        return total + dense(channels * height * width)
    if arch == "text_classifier":
        return config["max_length"] * config["embedding_dim"] + dense(config["embedding_dim"])
    if arch == "lstm":
        hidden = config["hidden_size"]
        per_step = 4 * hidden * (1 + hidden) + (config["num_layers"] - 1) * 4 * hidden * 2 * hidden
        return config["window"] * per_step + hidden
    return 2 * config["embedding_dim"]


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def _full_float32(device: Any) -> Iterator[None]:
    """cuDNN convolutions and LSTMs in full float32 (not TF32, torch's default for cuDNN on
    Ampere and later): predictions then match the float32 ONNX export, and evaluation does
    not depend on the card. Training keeps TF32's speed."""
    if device.type != "cuda":
        yield
        return
    import torch

    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


class PyTorchRun(TrainingRun):
    """One network trained epoch by epoch; see the module docstring.

    `config` (a checkpoint's network config) builds the network without training rows, for
    data.inference_only: the sizes, vocabulary and id maps come from it instead of the data,
    and the training statistics from the checkpoint restore() then loads."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, *, config: dict[str, Any] | None = None):
        import torch

        _validate(spec)
        if data.task != spec.model_type:
            raise ValueError(f"data prepared for {data.task!r}, spec trains {spec.model_type!r}")
        self._arch = spec.architecture
        wanted_kind = neural.NETWORKS[self._arch]["input_kind"]
        if data.input_kind != wanted_kind:
            raise ValueError(f"{self._arch} reads {wanted_kind} input; the data is {data.input_kind}")
        self._spec = spec
        self._data = data
        self.total_epochs = spec.epochs
        self._classifier = spec.model_type == "classification"
        self._classes = list(data.classes) if self._classifier else None
        self._loss_name = neural.loss_name(spec)
        inference = data.inference_only
        if inference and config is None:
            raise ValueError("data without training rows needs the network config of a checkpoint "
                             "(PyTorchAdapter.load_run)")
        if self._classifier:
            self._check_classes()
        self._binary = self._loss_name == "binary_cross_entropy"
        if len(data.y_train) < 2 and spec.regularization.batch_norm and not inference:
            raise InvalidArgument.field(f"{TC}.regularization.batch_norm",
                                        "batch normalization needs at least 2 training rows")
        self._notes: list[str] = []
        # A checkpoint's network (loading one to predict), or a parent model's (fine-tuning, and
        # resuming a fine-tuning job): its shape and input maps are the parent's, not this spec's.
        self._config: dict[str, Any] = dict(config) if config is not None else self._network_config()
        if config is not None and not inference:
            self._check_parent_network()
        if inference and self._classifier and [str(c) for c in self._classes] != self._config.get("classes"):
            raise FailedPrecondition(f"the checkpoint's network has classes {self._config.get('classes')}, "
                                     f"the data {[str(c) for c in self._classes]}")
        self._device = self._pick_device()
        self._amp = bool(spec.mixed_precision) and self._device.type == "cuda"
        if spec.mixed_precision:
            self._notes.append("mixed precision: float16 autocast with gradient scaling" if self._amp else
                               "mixed_precision is ignored on cpu: training runs in float32")
        self._rng_devices = [self._device.index or 0] if self._device.type == "cuda" else []

        # Parameters are initialized from the seed, on the run's own generator state.
        with torch.random.fork_rng(devices=self._rng_devices):
            torch.manual_seed(spec.seed)
            module = build_module(self._config)
            self._rng = self._capture_rng()
        # Without training rows the statistics come with the checkpoint's weights (see restore).
        self._target_std = 1.0 if inference else self._fit_statistics(module)
        self._module = module.to(self._device)
        self._frozen = self._freeze(spec.frozen_layers)
        # What the optimizer steps: every parameter but the frozen layers'.
        self._params = [p for p in self._module.parameters() if p.requires_grad]
        # L1 weighs every weight matrix (linear, convolution, embedding, LSTM), not biases or norms.
        self._l1_weights = [p for name, p in self._module.named_parameters()
                            if name.rsplit(".", 1)[-1].startswith("weight") and p.dim() >= 2]
        self._optimizer = self._make_optimizer()
        self._schedule = LearningRateSchedule(spec.lr_scheduler, neural.learning_rate(spec), spec.epochs)
        self._scaler = torch.amp.GradScaler("cuda") if self._amp else None

        self._class_weights = None
        if self._classifier and not inference:
            weights = neural.class_weights(spec, np.asarray(data.y_train), self._classes)
            if weights is not None:
                self._class_weights = torch.as_tensor(weights, dtype=torch.float32, device=self._device)
        # Reported losses are in target units; see the module docstring.
        self._loss_unit = {"mse": self._target_std ** 2, "huber": self._target_std ** 2,
                           "mae": self._target_std}.get(self._loss_name, 1.0)

        self._X_train = self._tensor(data.X_train)
        self._y_train = self._targets(data.y_train)
        X_val, y_val = data.X_val, data.y_val
        self._validating_on_training_data = X_val is None or y_val is None or len(y_val) == 0
        if self._validating_on_training_data:
            self._X_val, self._y_val_t, self._y_val = self._X_train, self._y_train, np.asarray(data.y_train)
        else:
            self._X_val, self._y_val_t, self._y_val = self._tensor(X_val), self._targets(y_val), np.asarray(y_val)
        work = (min(spec.batch_size, len(data.y_train)) or spec.batch_size) * _multiply_adds(self._config)
        self._threads = 1 if work < _ONE_THREAD_BELOW else torch.get_num_threads()
        self._epoch = 0
        # Data-parallel training (data_parallel): the module wrapped in DistributedDataParallel,
        # this worker's rank and the number of workers. One worker trains self._module itself.
        self._train_module = self._module
        self._rank, self._world = 0, 1

    # -- setup --

    def _network_config(self) -> dict[str, Any]:
        """The "config" of the torch export: everything build_module needs, and the input maps."""
        spec, data, arch = self._spec, self._data, self._arch
        reg = spec.regularization
        config: dict[str, Any] = {
            "framework": "pytorch",
            "architecture": arch,
            "task": spec.model_type,
            "feature_names": list(data.feature_names),
            "dropout": float(reg.dropout),
            "batch_norm": bool(reg.batch_norm),
            "n_outputs": 1 if not self._classifier or self._binary else len(self._classes),
            "classes": [str(c) for c in self._classes] if self._classifier else None,
        }
        if arch in ("mlp", "cnn", "text_classifier"):
            default = DEFAULT_HIDDEN_UNITS.get(arch)
            config["hidden_units"] = ([int(u) for u in spec.hyperparameters.get("hidden_units", default)]
                                      if default else neural.hidden_units(spec))
            config["activation"] = neural.activation(spec)
        if arch in ("mlp", "cnn"):
            config["n_features"] = int(np.shape(data.X_train)[1])
        if arch == "cnn":
            shape = _image_shape(spec.input_shape)
            if math.prod(shape) != config["n_features"]:
                raise InvalidArgument.field(
                    "model_config.input_shape",
                    f"input_shape {list(spec.input_shape)} holds {math.prod(shape)} pixels but the data has "
                    f"{config['n_features']} feature columns; they must be equal")
            config["input_shape"] = shape
            config["filters"] = [int(f) for f in spec.hyperparameters.get("filters", DEFAULT_FILTERS)]
            config["kernel_size"] = neural.int_hyperparameter(spec, "kernel_size", DEFAULT_KERNEL_SIZE)
        elif arch == "text_classifier":
            texts = self._texts(data.X_train)
            vocabulary = text.build_vocabulary(texts, neural.int_hyperparameter(spec, "vocab_size",
                                                                                DEFAULT_VOCAB_SIZE))
            config["vocabulary"] = vocabulary
            config["n_tokens"] = len(vocabulary) + 2  # with padding (0) and unknown (1)
            config["max_length"] = neural.int_hyperparameter(spec, "max_length", DEFAULT_MAX_LENGTH)
            config["embedding_dim"] = neural.int_hyperparameter(spec, "embedding_dim", DEFAULT_EMBEDDING_DIM[arch])
        elif arch == "lstm":
            config["window"] = int(np.shape(data.X_train)[1])
            config["hidden_size"] = neural.int_hyperparameter(spec, "hidden_size", DEFAULT_HIDDEN_SIZE)
            config["num_layers"] = neural.int_hyperparameter(spec, "num_layers", DEFAULT_NUM_LAYERS)
            if reg.dropout and config["num_layers"] == 1:
                self._notes.append("dropout applies between LSTM layers; with num_layers 1 it has no effect")
        elif arch == "matrix_factorization":
            pairs = self._pairs(data.X_train)
            for side, column in (("user", 0), ("item", 1)):
                ids = sorted(set(pairs[:, column].tolist()))
                config[f"{side}_index"] = {key: i for i, key in enumerate(ids, start=1)}
                config[f"n_{side}s"] = len(ids)
            config["embedding_dim"] = neural.int_hyperparameter(spec, "embedding_dim", DEFAULT_EMBEDDING_DIM[arch])
            if reg.dropout:
                self._notes.append("dropout does not apply to matrix_factorization: it has no hidden layers")
        if reg.batch_norm and arch in ("lstm", "matrix_factorization"):
            self._notes.append(f"batch_norm does not apply to {arch}: the network has no layer to normalize")
        return config

    def _check_parent_network(self) -> None:
        """A parent model's network (fine-tuning) fits this job: same architecture and outputs
        (the worker has checked the features and classes against the parent's)."""
        theirs = self._config
        if theirs.get("architecture") != self._arch or theirs.get("task") != self._spec.model_type:
            raise FailedPrecondition(f"the model to fine-tune is a {theirs.get('task')} {theirs.get('architecture')}, "
                                     f"this job trains a {self._spec.model_type} {self._arch}")
        outputs = 1 if not self._classifier or self._binary else len(self._classes)
        if theirs.get("n_outputs") != outputs:
            raise FailedPrecondition(f"the model to fine-tune has {theirs.get('n_outputs')} outputs, this job's loss "
                                     f"({self._loss_name}) needs {outputs}: use the parent's loss_function")

    def _freeze(self, layers: list[str]) -> list[str]:
        """Stop the gradients of model_config.frozen_layers: each a module path of the network
        (e.g. "1" or "embedding"), whose parameters, and those of the modules inside it, stay as
        they are. Unknown names are INVALID_ARGUMENT listing the network's layers."""
        if not layers:
            return []
        parameters = dict(self._module.named_parameters())
        owners = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in parameters if "." in name))
        paths = {".".join(owner.split(".")[:k]) for owner in owners for k in range(1, owner.count(".") + 2)}
        for layer in layers:
            if layer not in paths:
                raise InvalidArgument.field("model_config.frozen_layers",
                                            f"{layer!r} is not a layer of this {self._arch}: its layers with weights "
                                            f"are {', '.join(owners)}")
        frozen = [name for name in parameters if any(name == f or name.startswith(f + ".") for f in layers)]
        if len(frozen) == len(parameters):
            raise InvalidArgument.field("model_config.frozen_layers", "freezes every layer: nothing would train")
        for name in frozen:
            parameters[name].requires_grad_(False)
        count = sum(parameters[name].numel() for name in frozen)
        total = sum(p.numel() for p in parameters.values())
        self._notes.append(f"frozen: {', '.join(layers)} ({count:,} of {total:,} parameters)")
        return frozen

    def start_from(self, state: bytes) -> None:
        """Take a parent model's weights and statistics (fine-tuning): the optimizer, schedule,
        epochs and random state stay this run's own."""
        saved = _read_state(state, self._device)
        self._module.load_state_dict(saved["model"])
        self._take_target_std(saved)

    def _take_target_std(self, saved: dict[str, Any]) -> None:
        """The std regression losses are standardized by, as the saved network was trained with."""
        if "target_std" in saved:
            self._target_std = float(saved["target_std"])
        elif self._data.inference_only:
            self._target_std = self._buffered_target_std()
        else:
            return
        self._loss_unit = {"mse": self._target_std ** 2, "huber": self._target_std ** 2,
                           "mae": self._target_std}.get(self._loss_name, 1.0)

    def _fit_statistics(self, module: Any) -> float:
        """Set the module's training-data buffers; return the std regression losses are standardized by
        (1 for classifiers)."""
        import torch

        data, arch = self._data, self._arch
        if arch in ("mlp", "cnn"):
            X = np.asarray(data.X_train, dtype=np.float64)
            std = X.std(axis=0)
            module[0].mean.copy_(torch.as_tensor(X.mean(axis=0)))
            # Constant features would divide by zero; like scikit-learn's StandardScaler, leave them unscaled.
            module[0].std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0)))
        if self._classifier:
            return 1.0
        y = np.asarray(data.y_train, dtype=np.float64)
        if arch == "lstm":
            # The series' scale, from every value of the training windows, standardizes input and output alike.
            values = np.asarray(data.X_train, dtype=np.float64)
            std = float(values.std()) if values.std() > 0 else 1.0
            module.mean.fill_(float(values.mean()))
            module.std.fill_(std)
            return std
        std = float(y.std()) if y.std() > 0 else 1.0
        if arch == "matrix_factorization":
            module.global_mean.fill_(float(y.mean()))
        else:
            module[-1].mean.fill_(float(y.mean()))
            module[-1].std.fill_(std)
        return std

    def _check_classes(self) -> None:
        if self._classes is None:
            raise ValueError("classification data must list its classes (TrainingData.classes)")
        present = np.unique(np.asarray(self._data.y_train))
        if len(present) < 2 and not self._data.inference_only:
            raise InvalidArgument.field(
                "data_config.label_column",
                f"label column {self._data.label_name!r} has a single class in the training data "
                f"({present.tolist()}); classification needs at least two")
        if self._loss_name == "binary_cross_entropy" and len(self._classes) != 2:
            raise InvalidArgument.field(f"{TC}.loss_function", f"binary_cross_entropy needs two classes, the "
                                        f"label has {len(self._classes)}; use cross_entropy")
        setting = self._spec.hyperparameters.get("class_weight")
        if isinstance(setting, dict):
            known = [str(c) for c in self._classes]
            unknown = [k for k in setting if str(k) not in known]
            if unknown:
                raise InvalidArgument.field(f"{HP}.class_weight", f"no class {unknown[0]!r} in the label column; "
                                            f"classes are {', '.join(known)}")

    def _pick_device(self) -> Any:
        import torch

        wanted = self._spec.resources.gpu
        if wanted > 0 and torch.cuda.is_available():
            device = torch.device("cuda", torch.cuda.current_device())
            self._notes.append(f"training on {device} ({torch.cuda.get_device_name(device)})"
                               + (f"; resources.gpu asks for {wanted}, a {self._arch} network trains on one"
                                  if wanted > 1 else ""))
            return device
        if wanted > 0:
            self._notes.append(f"training on cpu: resources.gpu asks for {wanted} but CUDA is not available "
                               f"to torch {torch.__version__}")
        else:
            self._notes.append("training on cpu (resources.gpu is 0)")
        return torch.device("cpu")

    def _make_optimizer(self) -> Any:
        import torch

        spec = self._spec
        name = neural.optimizer_name(spec)
        lr = neural.learning_rate(spec)
        options = spec.optimizer_config
        decay = spec.regularization.weight_decay or spec.regularization.l2
        if name == "adamw" and not decay:
            self._notes.append("adamw without weight decay is adam: set training_config.regularization.weight_decay")
        if name in ("adam", "adamw"):
            cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
            return cls(self._params, lr=lr, betas=(options.get("beta1", 0.9), options.get("beta2", 0.999)),
                       eps=options.get("epsilon", 1e-8), weight_decay=decay)
        if name == "sgd":
            return torch.optim.SGD(self._params, lr=lr, momentum=options.get("momentum", 0.0),
                                   nesterov=bool(options.get("nesterov", False)), weight_decay=decay)
        return torch.optim.RMSprop(self._params, lr=lr, alpha=options.get("rho", 0.99),
                                   eps=options.get("epsilon", 1e-8), momentum=options.get("momentum", 0.0),
                                   weight_decay=decay)

    # -- inputs --

    @staticmethod
    def _texts(X: np.ndarray) -> list[str]:
        return ["" if t is None else str(t) for t in np.asarray(X, dtype=object).reshape(-1).tolist()]

    @staticmethod
    def _pairs(X: np.ndarray) -> np.ndarray:
        """(user id, item id) rows as strings, object [n, 2]."""
        pairs = np.asarray(X, dtype=object).reshape(-1, 2)
        return np.vectorize(str, otypes=[object])(pairs) if pairs.size else pairs

    def model_inputs(self, X: np.ndarray) -> np.ndarray:
        """What the network and its ONNX export take for rows X of the data's layout: float32
        features or windows, int64 token ids [n, max_length], or int64 (user index, item
        index) [n, 2] with 0 for ids the training data did not have."""
        config = self._config
        if self._arch == "text_classifier":
            return text.encode(self._texts(X), config["vocabulary"], config["max_length"])
        if self._arch == "matrix_factorization":
            pairs = self._pairs(X)
            users, items = config["user_index"], config["item_index"]
            return np.array([[users.get(u, 0), items.get(i, 0)] for u, i in pairs.tolist()],
                            dtype=np.int64).reshape(-1, 2)
        return np.asarray(X, dtype=np.float32)

    def _tensor(self, X: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(self.model_inputs(X), device=self._device)

    def _targets(self, y: np.ndarray) -> Any:
        """Labels as the loss wants them: class indices, or float32 [n, 1] targets."""
        import torch

        if not self._classifier:
            return torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1), device=self._device)
        codes = class_codes(y, self._classes)
        if codes is None:
            unknown = next(v for v in np.asarray(y).tolist() if v not in self._classes)
            raise ValueError(f"label {unknown!r} is not one of the classes {self._classes}")
        return torch.as_tensor(codes, device=self._device)

    def _capture_rng(self) -> dict[str, Any]:
        import torch

        state = {"cpu": torch.get_rng_state()}
        if self._rng_devices:
            state["cuda"] = torch.cuda.get_rng_state(self._rng_devices[0])
        return state

    def _install_rng(self, state: dict[str, Any]) -> None:
        import torch

        torch.set_rng_state(state["cpu"].cpu())
        if self._rng_devices and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"].cpu(), self._rng_devices[0])

    # -- the loss --

    def _loss(self, out: Any, target: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if out.dtype != torch.float32:  # float16 under autocast
            out = out.float()
        if self._classifier:
            # Unweighted: the loss function's own mean, one operation less per batch than a mean
            # of per-row losses.
            reduction = "mean" if self._class_weights is None else "none"
            if self._binary:
                losses = F.binary_cross_entropy_with_logits(out[:, 0], target.float(), reduction=reduction)
            else:
                losses = F.cross_entropy(out, target, reduction=reduction)
            if self._class_weights is None:
                return losses
            # Weighted mean of the per-row losses, as torch's CrossEntropyLoss(weight=...) computes it.
            w = self._class_weights[target]
            return (losses * w).sum() / w.sum()
        # Standardized units: only the error (out - target) matters to these losses.
        scale = self._target_std
        if self._loss_name == "mse":
            return F.mse_loss(out / scale, target / scale)
        if self._loss_name == "mae":
            return F.l1_loss(out / scale, target / scale)
        return F.huber_loss(out / scale, target / scale, delta=1.0)

    # -- predictions --

    def _outputs(self, X: Any) -> Any:
        """The network's float32 outputs on X in evaluation mode, in chunks."""
        import torch

        self._module.eval()
        with torch.no_grad(), _full_float32(self._device):
            return torch.cat([self._module(chunk) for chunk in X.split(_EVAL_CHUNK)])

    def _probabilities(self, out: Any) -> np.ndarray:
        """Class probabilities (float64, one column per class) of the network's logits."""
        import torch

        z = out.double()
        if self._binary:
            p = torch.sigmoid(z)
            proba = torch.cat([1 - p, p], dim=1)
        else:
            proba = torch.softmax(z, dim=1)
        return proba.cpu().numpy()

    def _predictions(self, X: np.ndarray) -> np.ndarray:
        """What the exported models output on X: probabilities, or predictions [n]."""
        out = self._outputs(self._tensor(X))
        if self._classifier:
            return self._probabilities(out)
        return out[:, 0].double().cpu().numpy()

    def predict(self, X: np.ndarray) -> Prediction:
        """Classifiers: the class of the largest probability, probabilities in class_labels
        order; everything else: the network's predictions in target units."""
        self._require_trained()
        with _threads(self._threads):
            out = self._predictions(X)
        if self._classifier:
            return Prediction(np.asarray(self._classes)[np.argmax(out, axis=1)], out)
        return Prediction(out)

    def _measure(self, X: Any, y_t: Any, y: np.ndarray) -> dict[str, float]:
        import torch

        out = self._outputs(X)
        with torch.no_grad():
            loss = float(self._loss(out, y_t)) * self._loss_unit
        if self._classifier:
            metrics = classification_metrics(y, self._probabilities(out), self._classes)
        else:
            metrics = regression_metrics(y, out[:, 0].double().cpu().numpy())
        metrics["loss"] = loss
        return metrics

    # -- TrainingRun --

    def train_epoch(self, epoch: int) -> EpochResult:
        import torch

        if epoch != self._epoch + 1:
            raise ValueError(f"epoch {epoch} requested; the run is at epoch {self._epoch}, "
                             f"so the next is {self._epoch + 1}")
        if epoch > self.total_epochs:
            raise ValueError(f"the run is complete after epoch {self._epoch}; there is no epoch {epoch}")
        logs: list[str] = []
        if epoch == 1:
            logs += self._notes
            if self._threads == 1:
                logs.append("the network is small: epochs run on one CPU thread")
            if self._validating_on_training_data:
                logs.append("no validation data: validation metrics are computed on the training data")

        spec = self._spec
        lr = self._schedule.lr_for_epoch(epoch)
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        order = self.epoch_order(epoch)
        if self._world > 1:  # this worker's share (see data_parallel)
            order = order[:len(order) // self._world * self._world][self._rank::self._world]
        batches = list(order.to(self._device).split(spec.batch_size))
        if spec.regularization.batch_norm and len(batches) > 1 and len(batches[-1]) == 1:
            # Batch normalization cannot normalize one row; it joins the batch before it.
            batches[-2:] = [torch.cat(batches[-2:])]
        k = max(1, spec.gradient_accumulation_steps)
        l1 = spec.regularization.l1
        clip = spec.regularization.gradient_clip_norm
        optimizer, scaler, module = self._optimizer, self._scaler, self._train_module

        losses = []
        gradient_norm = None
        # Each batch of a small network costs a few hundred microseconds, about as much as a
        # dozen extra tensor operations: the loop does only what the epoch's results need. The
        # gradient norm is reported for the epoch's last step, so it is measured there, and at
        # every step only when clipping needs it; autocast is entered only when it is on.
        autocast = (functools.partial(torch.autocast, self._device.type, dtype=torch.float16) if self._amp
                    else contextlib.nullcontext)
        module.train()
        with _threads(self._threads), torch.random.fork_rng(devices=self._rng_devices):
            self._install_rng(self._rng)
            optimizer.zero_grad(set_to_none=True)
            for i, rows in enumerate(batches):
                group_start = i - i % k
                group_size = min(k, len(batches) - group_start)
                with autocast():
                    out = module(self._X_train[rows])
                loss = self._loss(out, self._y_train[rows])
                objective = loss
                if l1 > 0:
                    objective = objective + l1 * sum(w.abs().sum() for w in self._l1_weights)
                if group_size > 1:
                    objective = objective / group_size
                (scaler.scale(objective) if scaler else objective).backward()
                losses.append(loss.detach())
                if i + 1 == group_start + group_size:
                    if scaler:
                        scaler.unscale_(optimizer)  # the norm and the clipping apply to true gradients
                    if clip > 0 or i + 1 == len(batches):
                        grads = [p.grad for p in self._params if p.grad is not None]
                        gradient_norm = torch.nn.utils.get_total_norm(grads)
                    if clip > 0:
                        torch.nn.utils.clip_grads_with_norm_(self._params, clip, gradient_norm)
                    if scaler:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            self._rng = self._capture_rng()

        training_loss = torch.stack(losses).mean()
        if self._world > 1:  # the mean of the workers' means: each took as many batches
            import torch.distributed as dist

            training_loss = training_loss.float().clone()
            dist.all_reduce(training_loss)
            training_loss /= self._world
        metrics = {"training_loss": float(training_loss) * self._loss_unit}
        with _threads(self._threads):
            validation = self._measure(self._X_val, self._y_val_t, self._y_val)
        metrics["validation_loss"] = validation.pop("loss")
        metrics.update(validation)
        metrics["learning_rate"] = float(lr)
        metrics["gradient_norm"] = float(gradient_norm)
        self._schedule.observe(epoch, metrics)
        self._epoch = epoch
        return EpochResult(metrics=metrics, extra={"batches": float(len(batches))}, logs=logs)

    def data_parallel(self) -> None:
        """Train together with the other workers of the initialised torch.distributed group
        (Ray Train's TorchTrainer; resources.workers): the module is wrapped in
        DistributedDataParallel, which starts every worker from rank 0's weights and averages
        gradients at every step. Each worker trains on its share of each epoch's order (the
        same permutation everywhere, rows rank, rank + N, ...; the last len % N rows of the
        order are left out that epoch so every worker takes the same number of steps) in
        batches of batch_size, and the epoch's training loss is averaged over the workers.
        Validation runs on every worker with the same weights, so every worker measures the
        same metrics and makes the same early-stopping decision."""
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        self._rank, self._world = dist.get_rank(), dist.get_world_size()
        if len(self._X_train) < self._world:
            raise InvalidArgument.field("resources.workers", f"{self._world} workers need at least as many training "
                                        f"rows; the data has {len(self._X_train)}")
        device_ids = [self._device.index or 0] if self._device.type == "cuda" else None
        self._train_module = DistributedDataParallel(self._module, device_ids=device_ids)

    def epoch_order(self, epoch: int) -> Any:
        """The order epoch `epoch` visits the training rows in: a permutation drawn from a
        generator seeded with (seed, epoch), so it needs no checkpointed state."""
        import torch

        shuffle = torch.Generator(device="cpu").manual_seed(_epoch_seed(self._spec.seed, epoch))
        return torch.randperm(len(self._X_train), generator=shuffle)

    def state_bytes(self) -> bytes:
        import torch

        state = {
            "format": _STATE_FORMAT,
            "config": self._config,
            "epoch": self._epoch,
            "model": self._module.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "schedule": self._schedule.state_dict(),
            "rng": self._rng,
            # The std regression losses are standardized by (1 for classifiers), for runs
            # loaded without training rows.
            "target_std": float(self._target_std),
        }
        if self._scaler is not None:
            state["grad_scaler"] = self._scaler.state_dict()
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def restore(self, state: bytes) -> None:
        saved = _read_state(state, self._device)
        theirs, ours = saved["config"], self._config
        differing = [k for k in _NETWORK_KEYS if theirs.get(k) != ours.get(k)]
        if differing:
            name = differing[0]
            if name in _INPUT_MAP_KEYS:
                raise FailedPrecondition(f"the checkpoint's network was trained with another {name} than the "
                                         "job's training data gives; resume with the data it was trained on")
            raise FailedPrecondition(f"the checkpoint's network has {name} {theirs.get(name)!r}, the job's "
                                     f"has {ours.get(name)!r}")
        self._module.load_state_dict(saved["model"])
        self._optimizer.load_state_dict(saved["optimizer"])
        self._schedule.load_state_dict(saved["schedule"])
        if self._scaler is not None and "grad_scaler" in saved:
            self._scaler.load_state_dict(saved["grad_scaler"])
        rng = dict(saved["rng"])
        if self._rng_devices and "cuda" not in rng:
            # A checkpoint written on cpu has no CUDA generator: keep the seeded one.
            rng["cuda"] = self._rng["cuda"]
        self._rng = rng
        self._epoch = int(saved["epoch"])
        self._take_target_std(saved)

    def _buffered_target_std(self) -> float:
        """The target std of a regression network, from the buffers that rescale its output
        (checkpoints written before "target_std" was saved); 1 where the network has none."""
        if self._classifier or self._arch == "matrix_factorization":
            return 1.0
        scale = self._module.std if self._arch == "lstm" else self._module[-1].std
        return float(scale.reshape(-1)[0])

    @property
    def epoch(self) -> int:
        """The last trained epoch (0 before the first)."""
        return self._epoch

    @property
    def device(self) -> str:
        """Where the network trains: "cpu" or "cuda:N"."""
        return str(self._device)

    @property
    def module(self) -> Any:
        """The trained torch.nn.Module (model_inputs(X) in; logits or target-unit predictions out):
        an nn.Sequential for mlp and cnn."""
        return self._module

    @property
    def input_preprocessing(self) -> dict[str, Any]:
        """What feeding the exported model takes beyond the data layer's preprocessing (JSON-
        serializable; the worker merges it into the job's model info): the vocabulary of a
        text_classifier, the id maps of a matrix_factorization (index 0: an id not in the map).
        Empty for networks that take the data layer's columns as they are."""
        config = self._config
        if self._arch == "text_classifier":
            return {"vocabulary": list(config["vocabulary"]), "max_length": config["max_length"],
                    "tokenizer": text.__name__}
        if self._arch == "matrix_factorization":
            return {"user_index": dict(config["user_index"]), "item_index": dict(config["item_index"])}
        return {}

    @property
    def class_labels(self) -> list[Any] | None:
        """Class labels in the order of the exported model's probability columns (every class
        of the data, including any absent from the training rows); None for regressors."""
        self._require_trained()
        return list(self._classes) if self._classifier else None

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        self._require_trained()
        with _threads(self._threads):
            metrics = self._measure(self._tensor(X), self._targets(y), np.asarray(y))
        metrics["validation_loss"] = metrics.pop("loss")
        return metrics

    @property
    def export_formats(self) -> list[str]:
        return ["onnx", "torch"]

    def export(self, fmt: str) -> bytes:
        name = self._export_name(fmt, "pytorch")
        self._require_trained()
        if name == "torch":
            return self._torch_export()
        return self._onnx_export()

    def _cpu_state(self) -> dict[str, Any]:
        return {k: v.detach().cpu().clone() for k, v in self._module.state_dict().items()}

    def _torch_export(self) -> bytes:
        """torch.save of {"state_dict", "config", "program"}; see the module docstring."""
        import torch

        program = self._program_export()
        buffer = io.BytesIO()
        # Pickle protocol 2 (torch.save's default) is the one torch.load(weights_only=True)
        # reads; it stores bytes as a latin-1 string, UTF-8 encoded in the file, so each byte
        # of 0x80 or more takes two.
        torch.save({"state_dict": self._cpu_state(), "config": dict(self._config), "program": program}, buffer)
        return buffer.getvalue()

    def _exportable(self) -> Any:
        """A CPU copy of the network in evaluation mode as both exports take it: class
        probabilities (classifiers) or predictions [batch, 1] in target units."""
        net = build_module(self._config)
        net.load_state_dict(self._cpu_state())
        net.eval()
        return _layers().Probabilities(net, self._binary).eval() if self._classifier else net

    def _program_export(self) -> bytes:
        """torch.export.save of the exportable network, batch axis dynamic; checked against the
        network before it is returned."""
        import torch

        batch = torch.export.Dim("batch")
        with warnings.catch_warnings():
            # nn.LSTM re-points its flat weight list at its own parameters while being traced, which
            # torch.export reports as tensor attributes assigned during export; the program takes them
            # as the parameters they are (lstm.weight_ih_l0, ...).
            warnings.filterwarnings("ignore", message=r".*were assigned during export", category=UserWarning)
            program = torch.export.export(self._exportable(), (self._example_input(),),
                                          dynamic_shapes=({0: batch},))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        program_bytes = buffer.getvalue()
        self._check_program(program_bytes)
        return program_bytes

    def _example_input(self) -> Any:
        """Two rows of the network's input, to trace the export with."""
        import torch

        config = self._config
        if self._arch == "text_classifier":
            return torch.ones(2, config["max_length"], dtype=torch.int64)
        if self._arch == "matrix_factorization":
            return torch.ones(2, 2, dtype=torch.int64)
        return torch.zeros(2, config["window" if self._arch == "lstm" else "n_features"])

    def _onnx_export(self) -> bytes:
        import torch

        exported = self._exportable()
        output = "probabilities" if self._classifier else "variable"
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            # dynamo=False picks the TorchScript exporter on purpose (these networks need no
            # graph capture); torch 2.9+ marks it deprecated on every call.
            warnings.simplefilter("ignore", DeprecationWarning)
            # The exporter warns that an LSTM without initial-state inputs may tie the export to the
            # traced batch size; the graph has no initial state, so onnxruntime starts from zeros of
            # any batch size (the export check and the tests feed other batch sizes). nn.LSTM's
            # input-size checks are constant for a given network, which the tracer warns about too.
            warnings.filterwarnings("ignore", message=".*with LSTM can cause an error", category=UserWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn")
            torch.onnx.export(exported, (self._example_input(),), buffer, dynamo=False,
                              input_names=["input"], output_names=[output], opset_version=ONNX_OPSET,
                              dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}})
        onnx_bytes = buffer.getvalue()
        self._check_onnx(onnx_bytes, output)
        return onnx_bytes

    def _check_onnx(self, onnx_bytes: bytes, output: str) -> None:
        # onnx_predict feeds token ids and id indices as int64, features as float32.
        self._check_export("ONNX", ONNX_TOLERANCE, lambda X: onnx_predict(onnx_bytes, self.model_inputs(X))[output])

    def _check_program(self, program_bytes: bytes) -> None:
        """The program as a user reloads it, from its bytes."""
        import torch

        module = torch.export.load(io.BytesIO(program_bytes)).module()

        def run(X: np.ndarray) -> np.ndarray:
            with torch.no_grad(), _threads(self._threads):
                return module(torch.as_tensor(self.model_inputs(X))).numpy()

        self._check_export("torch", PROGRAM_TOLERANCE, run)

    def _check_export(self, name: str, tolerance: float, predict: Any) -> None:
        """An export's outputs (`predict` of rows X) against the network's own on held-out rows
        (validation rows, or training rows when there are none); `tolerance` is absolute on
        probabilities and per unit of the largest prediction magnitude on regression values."""
        data = self._data
        X = data.X_train if self._validating_on_training_data else data.X_val
        X = np.asarray(X)[:_PARITY_ROWS]
        with _threads(self._threads):
            reference = self._predictions(X)
        if not self._classifier and len(reference):
            tolerance *= max(1.0, float(np.max(np.abs(reference))))
        got = np.asarray(predict(X), dtype=np.float64).reshape(reference.shape)
        difference = np.abs(got - reference)
        worst = float(np.max(difference)) if difference.size else 0.0
        if worst > tolerance or not np.all(np.isfinite(difference)):
            raise RuntimeError(f"{name} export check failed: max difference {worst:.3g} > tolerance {tolerance:g}")


def _read_state(state: bytes, device: Any) -> dict[str, Any]:
    """A checkpoint of this adapter as written by state_bytes; FailedPrecondition if it is not one."""
    import torch

    try:
        saved = torch.load(io.BytesIO(state), map_location=device, weights_only=True)
    except Exception as exc:  # not a torch file, or one holding more than tensors and primitives
        raise FailedPrecondition(f"the checkpoint is not a pytorch adapter checkpoint: {exc}") from exc
    if not isinstance(saved, dict) or saved.get("format") != _STATE_FORMAT:
        raise FailedPrecondition("the checkpoint was not written by this version of the pytorch adapter")
    return saved


class PyTorchAdapter(FrameworkAdapter):
    name = "pytorch"
    data_parallel = "torch"  # PyTorchRun.data_parallel: each epoch's order shared out
    fine_tuning = True
    freezes_layers = True
    input_kinds = ("tabular", "text", "interactions", "sequence")

    def validate(self, spec: TrainingSpec) -> None:
        _validate(spec)

    def create_run(self, spec: TrainingSpec, data: TrainingData) -> PyTorchRun:
        return PyTorchRun(spec, data)

    def load_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> PyTorchRun:
        # Without training rows, or for a fine-tuning job (the parent's network), the network is
        # built from the checkpoint's own config.
        fine_tuned = bool(spec.pretrained_path)
        config = _read_state(state, "cpu")["config"] if data.inference_only or fine_tuned else None
        run = PyTorchRun(spec, data, config=config)
        run.restore(state)
        return run

    def fine_tune_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> PyTorchRun:
        run = PyTorchRun(spec, data, config=_read_state(state, "cpu")["config"])
        run.start_from(state)
        return run

    def versions(self) -> dict[str, str]:
        import torch

        # onnx's version from its installed metadata: the export imports it, the first epoch need not wait.
        # torch.__version__ is a TorchVersion (a str subclass): sent to the server as it is, unpickling
        # it there would import torch into the server process (seconds of CPU, hundreds of MiB).
        return {
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "onnx": importlib.metadata.version("onnx"),
            "python": platform.python_version(),
        }
