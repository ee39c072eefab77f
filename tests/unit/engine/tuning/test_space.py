"""The search space: parsing with errors that name the parameter, and trial requests."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.tuning import space


def test_parse_apply_and_grid():
    params = space.parse_space([
        {"path": "training_config.learning_rate", "double_range": {"min": 1e-4, "max": 0.1, "log_scale": True}},
        {"path": "model_config.hyperparameters.max_depth", "int_range": {"min": "2", "max": "4"}},
        {"path": "model_config.hyperparameters.layers", "values": {"values": [[16], [32, 16]]}},
    ])
    assert [p.kind for p in params] == ["double", "int", "values"] and params[0].log
    assert space.grid_size(params) is None  # a real range has no grid
    assert space.grid_size(params[1:]) == 6 and len(space.grid_points(params[1:])) == 6
    base = {"training_config": {"epochs": 3}, "model_config": {"framework": "sklearn"}}
    request = space.apply(base, {"training_config.learning_rate": 0.01, "model_config.hyperparameters.max_depth": 3})
    assert request["training_config"] == {"epochs": 3, "learning_rate": 0.01}
    assert request["model_config"]["hyperparameters"] == {"max_depth": 3}
    assert base["training_config"] == {"epochs": 3}  # the base request is not changed
    assert space.parameters_key({"a": 0.1 + 0.2, "b": 1}) == space.parameters_key({"b": 1, "a": 0.3})


@pytest.mark.parametrize("parameters, field", [
    ([], "spec.parameters"),
    ([{"values": {"values": [1]}}], "spec.parameters[0].path"),
    ([{"path": "a"}], "spec.parameters[0]"),
    ([{"path": "a", "values": {"values": []}}], "spec.parameters[0].values"),
    ([{"path": "a", "values": {"values": [1, 1]}}], "spec.parameters[0].values"),
    ([{"path": "a", "double_range": {"min": 2, "max": 1}}], "spec.parameters[0].double_range"),
    ([{"path": "a", "double_range": {"min": 0, "max": 1, "log_scale": True}}],
     "spec.parameters[0].double_range.log_scale"),
    ([{"path": "a", "values": {"values": [1]}}, {"path": "a", "values": {"values": [2]}}],
     "spec.parameters[1].path"),
])
def test_bad_spaces_name_the_parameter(parameters, field):
    with pytest.raises(InvalidArgument) as err:
        space.parse_space(parameters)
    assert err.value.violations[0].field == field


def test_grids_refuse_real_ranges_and_huge_products():
    with pytest.raises(InvalidArgument, match="grid search needs"):
        space.grid_space(space.parse_space([{"path": "a", "double_range": {"min": 0, "max": 1}}]))
    big = [{"path": f"p{i}", "values": {"values": list(range(10))}} for i in range(5)]
    with pytest.raises(InvalidArgument, match="100000 combinations"):
        space.grid_space(space.parse_space(big))
