"""Framework adapters by name.

Built-in adapters are listed by module path and imported on first use. Adapter modules
import their framework lazily, so looking one up (and validating a spec with it) in the
server process never loads scikit-learn or any other framework.
"""

from __future__ import annotations

import importlib
import threading

from engine.errors import InvalidArgument, Unimplemented
from engine.frameworks.base import FrameworkAdapter

FIELD = "model_config.framework"

# name -> "module:Class"; imported by get_adapter.
_BUILTIN: dict[str, str] = {
    "sklearn": "engine.frameworks.scikit_learn:SklearnAdapter",
    "xgboost": "engine.frameworks.xgboost_adapter:XGBoostAdapter",
    "pytorch": "engine.frameworks.pytorch_adapter:PyTorchAdapter",
    "tensorflow": "engine.frameworks.tensorflow_adapter:TensorFlowAdapter",
}
# Frameworks the API names (ModelConfig.framework) whose adapters are not written yet.
_PLANNED: tuple[str, ...] = ()

_registered: dict[str, type[FrameworkAdapter]] = {}
_instances: dict[str, FrameworkAdapter] = {}
_lock = threading.Lock()


def register(adapter_cls: type[FrameworkAdapter]) -> type[FrameworkAdapter]:
    """Make `adapter_cls` available under `adapter_cls.name`; usable as a class decorator.

    Registering a name again replaces the adapter (tests register fakes this way)."""
    name = getattr(adapter_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{adapter_cls!r} has no `name`; set the class attribute to its registry key")
    with _lock:
        _registered[name] = adapter_cls
        _instances.pop(name, None)
    return adapter_cls


def available_frameworks() -> list[str]:
    """Names get_adapter answers with an adapter, sorted."""
    return sorted(set(_BUILTIN) | set(_registered))


def get_adapter(name: str) -> FrameworkAdapter:
    """The adapter registered as `name`.

    Raises InvalidArgument on model_config.framework for a name the service does not know,
    and Unimplemented for a framework the API names but this build has no adapter for."""
    with _lock:
        cached = _instances.get(name)
        if cached is not None:
            return cached
        cls = _registered.get(name)
        if cls is None and name in _BUILTIN:
            module_name, _, class_name = _BUILTIN[name].partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            _registered[name] = cls
        if cls is not None:
            adapter = _instances[name] = cls()
            return adapter

    available = ", ".join(available_frameworks())
    if name in _PLANNED:
        raise Unimplemented(f"framework {name!r} is not implemented yet; available: {available}")
    known = ", ".join(available_frameworks() + [f"{p} (not yet available)" for p in _PLANNED if p not in _registered])
    if not name:
        raise InvalidArgument.field(FIELD, f"framework is required; use one of: {known}")
    raise InvalidArgument.field(FIELD, f"unknown framework {name!r}; use one of: {known}")
