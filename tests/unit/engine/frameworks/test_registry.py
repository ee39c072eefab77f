import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.frameworks import registry
from engine.frameworks.base import FrameworkAdapter

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_instances", {})


def test_sklearn_is_available_and_cached(clean_registry):
    adapter = registry.get_adapter("sklearn")
    assert adapter.name == "sklearn"
    assert type(adapter).__name__ == "SklearnAdapter"
    assert registry.get_adapter("sklearn") is adapter
    assert registry.available_frameworks() == ["pytorch", "sklearn", "tensorflow", "xgboost"]


@pytest.mark.parametrize(("name", "cls"), [("xgboost", "XGBoostAdapter"), ("pytorch", "PyTorchAdapter"),
                                           ("tensorflow", "TensorFlowAdapter")])
def test_every_seed_framework_has_an_adapter(clean_registry, name, cls):
    adapter = registry.get_adapter(name)
    assert type(adapter).__name__ == cls and adapter.name == name


def test_unknown_framework_names_the_field_and_the_choices(clean_registry):
    with pytest.raises(InvalidArgument) as err:
        registry.get_adapter("caffe")
    (violation,) = err.value.violations
    assert violation.field == "model_config.framework"
    assert "'caffe'" in violation.description
    assert "sklearn" in violation.description and "pytorch" in violation.description


def test_empty_framework_is_required(clean_registry):
    with pytest.raises(InvalidArgument) as err:
        registry.get_adapter("")
    assert err.value.violations[0].field == "model_config.framework"
    assert "required" in err.value.message


def test_register_adds_and_replaces_adapters(clean_registry):
    class Fake(FrameworkAdapter):
        name = "fake"

        def validate(self, spec): ...
        def create_run(self, spec, data): ...
        def load_run(self, spec, data, state): ...
        def versions(self): return {}

    assert registry.register(Fake) is Fake
    assert isinstance(registry.get_adapter("fake"), Fake)
    assert "fake" in registry.available_frameworks()

    class Other(Fake):
        pass

    registry.register(Other)
    assert type(registry.get_adapter("fake")) is Other


def test_register_needs_a_name(clean_registry):
    class Nameless:
        pass

    with pytest.raises(TypeError, match="name"):
        registry.register(Nameless)


def test_validating_in_the_server_process_loads_no_framework():
    # The server validates specs without paying for (or depending on) sklearn and ONNX.
    script = textwrap.dedent("""
        import sys
        from engine.frameworks.registry import get_adapter
        from engine.jobs.spec import TrainingSpec
        adapter = get_adapter("sklearn")
        for arch, task in [("logistic_regression", "classification"), ("random_forest", "regression")]:
            spec = TrainingSpec(framework="sklearn", architecture=arch, model_type=task, epochs=3)
            adapter.validate(spec)
            assert adapter.planned_epochs(spec) == 3
        loaded = sorted(m for m in ("sklearn", "skl2onnx", "onnx", "onnxruntime", "scipy") if m in sys.modules)
        print(",".join(loaded) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
