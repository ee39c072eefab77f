"""resources.memory and resources.cpu quantities, and specs stored before retry_policy existed."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.jobs.spec import TrainingSpec, parse_cpu, parse_memory


@pytest.mark.parametrize(("text", "size"), [
    ("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1.5Gi", 3 * 2**29), ("300M", 300 * 10**6),
    ("65536Ki", 64 * 2**20), ("1073741824", 2**30), (" 64Mi ", 64 * 2**20), ("", 0),
])
def test_memory_quantities_in_kubernetes_notation(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize(("text", "says"), [
    ("512", "'512' is 512 bytes, less than a worker needs to start (at least 32Mi): did you mean '512Mi'?"),
    ("16Ki", "'16Ki' is 16384 bytes, less than a worker needs to start (at least 32Mi)"),
    ("2 gigs", "'2 gigs' is not a memory quantity: write e.g. '512Mi' or '2Gi'"),
    ("-1Gi", "'-1Gi' is not a memory quantity: write e.g. '512Mi' or '2Gi'"),
    ("1mi", "'1mi' is not a memory quantity: write e.g. '512Mi' or '2Gi'"),
])
def test_a_bad_memory_quantity_names_the_field_and_the_fix(text, says):
    with pytest.raises(InvalidArgument) as refused:
        parse_memory(text)
    assert refused.value.violations[0].field == "resources.memory"
    assert refused.value.violations[0].description == says


@pytest.mark.parametrize(("text", "cores"), [("2", 2.0), ("1.5", 1.5), ("500m", 0.5), (" 250m ", 0.25), ("", 0.0)])
def test_cpu_quantities_in_kubernetes_notation(text, cores):
    assert parse_cpu(text) == cores


@pytest.mark.parametrize("text", ["two", "0", "-1", "1.5cores", "nan", "inf", "m"])
def test_a_bad_cpu_quantity_names_the_field_and_the_fix(text):
    with pytest.raises(InvalidArgument) as refused:
        parse_cpu(text)
    assert refused.value.violations[0].field == "resources.cpu"
    assert refused.value.violations[0].description == f"{text!r} is not a CPU quantity; use cores such as \"2\" or \"500m\""


def test_a_spec_stored_without_a_retry_policy_retries_nothing():
    stored = TrainingSpec(framework="sklearn").to_dict()
    del stored["retry_policy"]  # as jobs created before the field existed are stored
    assert TrainingSpec.from_dict(stored).retry_policy.max_retries == 0
    stored["retry_policy"] = {"max_retries": 2}
    assert TrainingSpec.from_dict(stored).retry_policy.max_retries == 2
