"""Pipeline definitions: stage validation, layers, retries, references, conditions, cache keys, templates."""

from __future__ import annotations

import copy

import pytest
from forge.training.v1 import pipeline_pb2
from google.protobuf import json_format

from engine.errors import InvalidArgument
from engine.pipelines.definition import (
    STAGE_TYPES,
    Stage,
    condition_references,
    evaluate_condition,
    execution_order,
    instantiate_template,
    parse_stages,
    parse_template_parameters,
    references,
    resolve,
    retry_delay,
    stage_cache_key,
)


def stage(stage_id: str, *dependencies: str, type: str = "STAGE_TYPE_MODEL_TRAINING", **fields) -> dict:
    return {"id": stage_id, "type": type, "dependencies": list(dependencies), **fields}


def error_of(call, *args, **kwargs) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        call(*args, **kwargs)
    return info.value


def fields_of(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


# ---- parsing --------------------------------------------------------------------------------


def test_parses_the_proto_json_form():
    message = pipeline_pb2.StageConfig(
        id="train", type=pipeline_pb2.STAGE_TYPE_MODEL_TRAINING, dependencies=["prep"], condition="prep.rows > 0",
        retry=pipeline_pb2.RetryPolicy(max_attempts=3, backoff=pipeline_pb2.BACKOFF_TYPE_EXPONENTIAL),
        disable_cache=True,
    )
    message.timeout.FromSeconds(30)
    message.retry.initial_delay.FromNanoseconds(1_500_000_000)
    message.retry.max_delay.FromSeconds(10)
    message.parameters.update({"dataset": "${prep.dataset_id}", "epochs": 5})
    raw = json_format.MessageToDict(message, preserving_proto_field_name=True)
    prep = {"id": "prep", "type": "STAGE_TYPE_DATA_PREPARATION"}

    parsed = parse_stages([prep, raw])

    assert parsed[0] == Stage(id="prep", type="data_preparation", dependencies=(), parameters={}, timeout_seconds=0.0,
                              max_attempts=1, backoff="fixed", initial_delay=0.0, max_delay=0.0, condition="",
                              custom_function="", cache=True)
    train = parsed[1]
    assert train.type == "model_training"
    assert train.dependencies == ("prep",)
    assert train.parameters == {"dataset": "${prep.dataset_id}", "epochs": 5.0}
    assert train.timeout_seconds == 30.0
    assert (train.max_attempts, train.backoff, train.initial_delay, train.max_delay) == (3, "exponential", 1.5, 10.0)
    assert train.condition == "prep.rows > 0"
    assert train.cache is False


def test_every_stage_type_is_accepted_with_or_without_its_prefix():
    stages = [{"id": f"s{i}", "type": f"STAGE_TYPE_{t.upper()}" if i % 2 else t,
               **({"custom_function": "f"} if t == "custom" else {})} for i, t in enumerate(STAGE_TYPES)]
    assert [s.type for s in parse_stages(stages, functions=["f"])] == list(STAGE_TYPES)


def test_no_stages():
    error = error_of(parse_stages, [])
    assert fields_of(error) == ["pipeline.stages"]
    assert "at least one stage" in error.message


def test_duplicate_ids_are_named():
    error = error_of(parse_stages, [stage("a"), stage("b"), stage("a")])
    assert fields_of(error) == ["pipeline.stages[2].id"]
    assert "'a'" in error.message and "stages[0]" in error.message and "stages[2]" in error.message


@pytest.mark.parametrize("bad", ["Train", "1st", "has_underscore", "x" * 64])
def test_invalid_ids(bad):
    error = error_of(parse_stages, [stage("ok"), stage(bad)])
    assert fields_of(error) == ["pipeline.stages[1].id"]
    assert repr(bad) in error.message


def test_missing_id_and_reserved_id():
    assert fields_of(error_of(parse_stages, [{"type": "STAGE_TYPE_CUSTOM"}], functions=["f"])) == [
        "pipeline.stages[0].id", "pipeline.stages[0].custom_function"]
    error = error_of(parse_stages, [stage("params")])
    assert fields_of(error) == ["pipeline.stages[0].id"] and "reserved" in error.message


@pytest.mark.parametrize("raw_type", [None, "STAGE_TYPE_UNSPECIFIED", ""])
def test_missing_type(raw_type):
    error = error_of(parse_stages, [{"id": "a", "type": raw_type}])
    assert fields_of(error) == ["pipeline.stages[0].type"]
    assert "required" in error.message and "STAGE_TYPE_MODEL_TRAINING" in error.message


def test_unknown_type():
    error = error_of(parse_stages, [stage("a", type="STAGE_TYPE_MAGIC")])
    assert fields_of(error) == ["pipeline.stages[0].type"]
    assert "'STAGE_TYPE_MAGIC' is not a stage type" in error.message


def test_unknown_fields_are_refused():
    error = error_of(parse_stages, [stage("a", customFunction="f", retry={"attempts": 2})])
    assert fields_of(error) == ["pipeline.stages[0].customFunction", "pipeline.stages[0].retry.attempts"]


def test_dependency_on_an_unknown_stage_names_stage_and_dependency():
    error = error_of(parse_stages, [stage("prep"), stage("train", "prepp")])
    assert fields_of(error) == ["pipeline.stages[1].dependencies"]
    assert "'train' depends on 'prepp'" in error.message and "stages: prep, train" in error.message


def test_self_dependency_is_a_cycle_of_length_one():
    error = error_of(parse_stages, [stage("a"), stage("b", "a", "b")])
    assert fields_of(error) == ["pipeline.stages[1].dependencies"]
    assert "depends on itself" in error.message and "b -> b" in error.message


def test_cycle_of_length_two():
    error = error_of(parse_stages, [stage("a", "b"), stage("b", "a")])
    assert fields_of(error) == ["pipeline.stages[0].dependencies"]
    assert "cycle: a -> b -> a" in error.message


def test_cycle_of_length_three_behind_a_valid_stage():
    error = error_of(parse_stages, [stage("root"), stage("a", "root", "c"), stage("b", "a"), stage("c", "b")])
    assert fields_of(error) == ["pipeline.stages[1].dependencies"]
    assert "cycle: a -> c -> b -> a" in error.message


def test_custom_stages_need_a_registered_function():
    custom = {"type": "STAGE_TYPE_CUSTOM"}
    error = error_of(parse_stages, [{"id": "a", **custom}], functions=["clean", "score"])
    assert fields_of(error) == ["pipeline.stages[0].custom_function"]
    assert "required" in error.message and "clean, score" in error.message

    error = error_of(parse_stages, [{"id": "a", "custom_function": "scroe", **custom}], functions=["score", "clean"])
    assert fields_of(error) == ["pipeline.stages[0].custom_function"]
    assert "'scroe' is not a registered function" in error.message and "registered: clean, score" in error.message

    error = error_of(parse_stages, [{"id": "a", "custom_function": "score", **custom}])
    assert "no custom functions are registered" in error.message

    assert parse_stages([{"id": "a", "custom_function": "score", **custom}], functions={"score"})[0].custom_function == "score"


def test_custom_function_on_a_non_custom_stage():
    error = error_of(parse_stages, [stage("a", custom_function="score")], functions=["score"])
    assert fields_of(error) == ["pipeline.stages[0].custom_function"]
    assert "STAGE_TYPE_CUSTOM" in error.message


@pytest.mark.parametrize(
    "fields, where, words",
    [
        ({"timeout": "-5s"}, "timeout", "negative"),
        ({"timeout": -1}, "timeout", "negative"),
        ({"timeout": "5 minutes"}, "timeout", "not a duration"),
        ({"retry": {"max_attempts": -1}}, "retry.max_attempts", "is -1"),
        ({"retry": {"max_attempts": 2.5}}, "retry.max_attempts", "whole number"),
        ({"retry": {"initial_delay": "-1s"}}, "retry.initial_delay", "negative"),
        ({"retry": {"initial_delay": "10s", "max_delay": "5s"}}, "retry.max_delay", "less than initial_delay"),
        ({"retry": {"backoff": "BACKOFF_TYPE_RANDOM"}}, "retry.backoff", "not a backoff"),
        ({"parameters": [1]}, "parameters", "must be an object"),
        ({"disable_cache": "yes"}, "disable_cache", "true or false"),
    ],
)
def test_bad_timeouts_and_retry_policies(fields, where, words):
    error = error_of(parse_stages, [stage("a", **fields)])
    assert fields_of(error) == [f"pipeline.stages[0].{where}"]
    assert words in error.message


def test_retry_defaults_and_zero_max_delay_meaning_no_cap():
    parsed = parse_stages([stage("a", retry={"max_attempts": 0, "initial_delay": "10s", "max_delay": "0s"})])[0]
    assert (parsed.max_attempts, parsed.backoff, parsed.initial_delay, parsed.max_delay) == (1, "fixed", 10.0, 0.0)


def test_references_must_be_to_transitive_dependencies():
    stages = [
        stage("prep"),
        stage("other"),
        stage("train", "prep", parameters={"data": "${prep.dataset_id}"}),
        stage("deploy", "train", parameters={"model": "${train.model}", "data": "${prep.dataset_id}"},
              condition="prep.rows > 0 and train.accuracy > 0.5"),
    ]
    assert [s.id for s in parse_stages(stages)] == ["prep", "other", "train", "deploy"]

    stages[3]["parameters"]["nested"] = {"list": ["x", "${other.value}/suffix"]}
    error = error_of(parse_stages, stages)
    assert fields_of(error) == ["pipeline.stages[3].parameters.nested.list[1]"]
    assert "'other'" in error.message and "'deploy' does not depend on" in error.message


def test_references_to_unknown_stages_and_self_references():
    stages = [stage("a", parameters={"x": "${ghost.y}"}), stage("b", "a", parameters={"me": "${b.out}"})]
    error = error_of(parse_stages, stages)
    assert fields_of(error) == ["pipeline.stages[0].parameters.x", "pipeline.stages[1].parameters.me"]
    assert "${ghost.y} refers to stage 'ghost', which is not a stage" in error.message
    assert "${b.out} reads stage 'b'" in error.message


def test_condition_references_must_be_dependencies():
    error = error_of(parse_stages, [stage("a"), stage("b", condition="a.accuracy > 0.5")])
    assert fields_of(error) == ["pipeline.stages[1].condition"]
    assert "a.accuracy reads stage 'a'" in error.message and "add 'a' to its dependencies" in error.message

    error = error_of(parse_stages, [stage("a"), stage("b", "a", condition="ghost.x > 1")])
    assert fields_of(error) == ["pipeline.stages[1].condition"] and "'ghost'" in error.message


def test_malformed_references_and_params_references():
    error = error_of(parse_stages, [stage("a", parameters={"x": "${justastage}"})])
    assert fields_of(error) == ["pipeline.stages[0].parameters.x"] and "is not a reference" in error.message
    # ${params.x} is filled at run time; $${...} is a literal.
    assert parse_stages([stage("a", parameters={"x": "${params.lr}", "y": "$${not.a.ref}"})])


@pytest.mark.parametrize(
    "condition, words",
    [
        ("a.accuracy >=", "not a valid expression"),
        ("a.accuracy ** 2 > 1", "'**' is not supported"),
        ("__import__('os').system('x')", "only the listed functions can be called"),
        ("accuracy > 0.5", "is not a stage output"),
    ],
)
def test_conditions_that_do_not_parse(condition, words):
    error = error_of(parse_stages, [stage("a"), stage("b", "a", condition=condition)])
    assert fields_of(error) == ["pipeline.stages[1].condition"]
    assert words in error.message


def test_independent_problems_are_reported_together():
    error = error_of(parse_stages, [stage("a", type="NOPE"), stage("B"), stage("c", timeout="-1s")])
    assert fields_of(error) == ["pipeline.stages[0].type", "pipeline.stages[1].id", "pipeline.stages[2].timeout"]


def test_custom_field_prefix():
    assert fields_of(error_of(parse_stages, [stage("a", "zz")], field="template.stages")) == [
        "template.stages[0].dependencies"]


# ---- order and retries ----------------------------------------------------------------------


def test_layers_of_a_diamond():
    stages = parse_stages([stage("join", "left", "right"), stage("left", "root"), stage("root"),
                           stage("right", "root"), stage("solo")])
    assert execution_order(stages) == [["root", "solo"], ["left", "right"], ["join"]]


def test_layers_place_a_stage_after_its_deepest_dependency():
    stages = parse_stages([stage("a"), stage("b", "a"), stage("c", "b"), stage("d", "a", "c")])
    assert execution_order(stages) == [["a"], ["b"], ["c"], ["d"]]
    assert execution_order([{"id": "x", "dependencies": ["y"]}, {"id": "y"}]) == [["y"], ["x"]]


def _retrying(backoff: str, initial: float, cap: float = 0.0) -> Stage:
    return parse_stages([stage("a", retry={"max_attempts": 9, "backoff": backoff, "initial_delay": f"{initial}s",
                                           "max_delay": f"{cap}s"})])[0]


def test_retry_delays_for_each_backoff():
    assert [retry_delay(_retrying("BACKOFF_TYPE_FIXED", 2), n) for n in (1, 2, 3, 4)] == [0, 2, 2, 2]
    assert [retry_delay(_retrying("BACKOFF_TYPE_LINEAR", 2), n) for n in (2, 3, 4)] == [2, 4, 6]
    assert [retry_delay(_retrying("BACKOFF_TYPE_EXPONENTIAL", 2), n) for n in (2, 3, 4, 5)] == [2, 4, 8, 16]
    assert retry_delay(_retrying("BACKOFF_TYPE_UNSPECIFIED", 3), 5) == 3


def test_retry_delays_are_capped():
    assert [retry_delay(_retrying("BACKOFF_TYPE_LINEAR", 2, 5), n) for n in (2, 3, 4)] == [2, 4, 5]
    assert [retry_delay(_retrying("BACKOFF_TYPE_EXPONENTIAL", 1, 5), n) for n in (2, 3, 4, 5)] == [1, 2, 4, 5]
    assert retry_delay(_retrying("BACKOFF_TYPE_EXPONENTIAL", 1, 5), 10_000) == 5
    assert retry_delay(_retrying("BACKOFF_TYPE_FIXED", 3, 3), 7) == 3


# ---- references -----------------------------------------------------------------------------

OUTPUTS = {
    "prep": {"dataset_id": "ds-1", "rows": 100, "columns": ["a", "b"]},
    "train": {"model_version": "v3", "metrics": {"accuracy": 0.91, "f1": 0.8}, "none": None},
}


def test_resolve_keeps_the_type_of_a_whole_reference():
    assert resolve("${prep.rows}", OUTPUTS) == 100
    assert resolve("${prep.columns}", OUTPUTS) == ["a", "b"]
    assert resolve("${train.metrics}", OUTPUTS) == {"accuracy": 0.91, "f1": 0.8}
    assert resolve("${train.metrics.accuracy}", OUTPUTS) == 0.91
    assert resolve("${prep.columns.1}", OUTPUTS) == "b"
    assert resolve("${params.lr}", OUTPUTS, {"lr": 0.01}) == 0.01
    assert resolve("${train.none}", OUTPUTS) is None


def test_resolve_formats_embedded_references_as_text_recursively():
    value = {
        "path": "models/${train.model_version}/${prep.rows}.bin",
        "list": ["${prep.dataset_id}", {"deep": "n=${params.n} ok=${params.ok} cols=${prep.columns}"}],
        "number": 3,
        "literal": "$${prep.rows}",
    }
    original = copy.deepcopy(value)
    resolved = resolve(value, OUTPUTS, {"n": 5.0, "ok": True})
    assert resolved == {
        "path": "models/v3/100.bin",
        "list": ["ds-1", {"deep": 'n=5 ok=true cols=["a","b"]'}],
        "number": 3,
        "literal": "${prep.rows}",
    }
    assert value == original
    resolved_list = resolve("${prep.columns}", OUTPUTS)
    resolved_list.append("c")
    assert OUTPUTS["prep"]["columns"] == ["a", "b"]


def test_resolve_names_a_missing_reference_and_what_exists():
    error = error_of(resolve, {"x": ["${train.model}"]}, OUTPUTS)
    assert fields_of(error) == ["parameters.x[0]"]
    assert "${train.model}" in error.message and "accuracy" not in error.message
    assert "metrics, model_version, none" in error.message

    error = error_of(resolve, "a ${train.metrics.auc} b", OUTPUTS)
    assert "${train.metrics.auc}" in error.message and "accuracy, f1" in error.message

    error = error_of(resolve, "${ghost.x}", OUTPUTS)
    assert "stage 'ghost' has no outputs" in error.message and "prep, train" in error.message

    error = error_of(resolve, "${params.lr}", OUTPUTS, {"epochs": 3})
    assert "no parameter 'lr'" in error.message and "epochs" in error.message

    error = error_of(resolve, "${train.model_version.x}", OUTPUTS)
    assert "'v3'" in error.message and "no key 'x'" in error.message


def test_references():
    assert references({"a": "${prep.x}", "b": ["${train.y.z} and ${params.p}", "$${lit.x}", "${bad}"], "c": 1}) == {
        "prep", "train"}
    assert references("plain") == set()
    assert condition_references("a.x > 1 and ${b.y} == 'c.d'") == {"a", "b"}


# ---- conditions -----------------------------------------------------------------------------

CONDITION_OUTPUTS = {
    "validate": {"accuracy": 0.85, "passed": True, "threshold": None, "odd key": 3},
    "train": {"model_version": "v1", "metrics": {"f1": 0.5}},
    "my-stage": {"n": 4},
}


def test_true_conditions():
    holds, reason = evaluate_condition("validate.accuracy >= 0.8 and train.model_version != ''", CONDITION_OUTPUTS)
    assert holds is True
    assert "validate.accuracy is 0.85" in reason and "train.model_version is 'v1'" in reason and "is true" in reason
    assert evaluate_condition("train.metrics.f1 == 0.5", CONDITION_OUTPUTS)[0] is True
    assert evaluate_condition("my-stage.n - 1 == 3", CONDITION_OUTPUTS)[0] is True
    assert evaluate_condition("${validate.accuracy} > 0.5 and validate.passed", CONDITION_OUTPUTS)[0] is True
    assert evaluate_condition("`validate.odd key` in [3, 4]", CONDITION_OUTPUTS)[0] is True
    assert evaluate_condition("lower(train.model_version) == 'v1'", CONDITION_OUTPUTS)[0] is True
    assert evaluate_condition("train.model_version == 'validate.accuracy'", CONDITION_OUTPUTS)[0] is False
    assert evaluate_condition("", CONDITION_OUTPUTS) == (True, "no condition")


def test_false_conditions_say_which_part_failed():
    holds, reason = evaluate_condition("validate.accuracy >= 0.9 and train.model_version != ''", CONDITION_OUTPUTS)
    assert (holds, reason) == (False, "validate.accuracy is 0.85, so 'validate.accuracy >= 0.9' is false")

    holds, reason = evaluate_condition("validate.accuracy > 0.9 or train.metrics.f1 > 0.6", CONDITION_OUTPUTS)
    assert holds is False
    assert reason == ("validate.accuracy is 0.85, so 'validate.accuracy > 0.9' is false; "
                      "train.metrics.f1 is 0.5, so 'train.metrics.f1 > 0.6' is false")

    holds, reason = evaluate_condition("not validate.passed", CONDITION_OUTPUTS)
    assert (holds, reason) == (False, "validate.passed is True, so 'not validate.passed' is false")


def test_a_null_output_makes_a_condition_unknown_which_is_false():
    holds, reason = evaluate_condition("validate.threshold > 0.5", CONDITION_OUTPUTS)
    assert holds is False and "validate.threshold is None" in reason and "unknown" in reason
    assert evaluate_condition("validate.threshold is None", CONDITION_OUTPUTS)[0] is True


@pytest.mark.parametrize(
    "condition, words",
    [
        ("validate.accuracy >=", "not a valid expression"),
        ("validate.accuracy.lower() == 'x'", "only the listed functions"),
        ("validate.accuracy ** 2 > 0", "'**' is not supported"),
        ("validate.acc > 0.5", "validate has no output 'acc'; it has: accuracy, odd key, passed, threshold"),
        ("ghost.x > 1", "stage 'ghost' has no outputs"),
        ("train.metrics.auc > 1", "train.metrics has no key 'auc'; it has: f1"),
        ("accuracy > 1", "is not a stage output"),
        ("train.model_version > 1", "cannot compare text with a number in 'train.model_version > 1'"),
        ("validate.accuracy", "not true/false"),
    ],
)
def test_conditions_that_cannot_be_evaluated(condition, words):
    error = error_of(evaluate_condition, condition, CONDITION_OUTPUTS)
    assert fields_of(error) == ["condition"]
    assert words in error.message
    assert "`" not in error.message.split("; allowed:")[0]  # names are shown as the user wrote them


# ---- cache keys -----------------------------------------------------------------------------


def test_cache_key_is_stable_and_sensitive():
    base, other_id = parse_stages([stage("a"), stage("b", timeout="5s")])
    params = {"lr": 0.1, "layers": [64, 32], "opts": {"x": 1, "y": "z"}}
    key = stage_cache_key(base, params, "1.0")
    assert len(key) == 64 and int(key, 16) >= 0
    # Same inputs: same key, whatever the order of keys, the stage id or its timeout.
    assert stage_cache_key(base, {"opts": {"y": "z", "x": 1.0}, "layers": [64, 32], "lr": 0.1}, "1.0") == key
    assert stage_cache_key(other_id, params, "1.0") == key
    # Anything that changes the work changes the key.
    assert stage_cache_key(base, {**params, "lr": 0.2}, "1.0") != key
    assert stage_cache_key(base, {**params, "layers": [32, 64]}, "1.0") != key
    assert stage_cache_key(base, params, "1.1") != key
    evaluation = parse_stages([stage("a", type="STAGE_TYPE_MODEL_EVALUATION")])[0]
    assert stage_cache_key(evaluation, params, "1.0") != key
    f, g = parse_stages([{"id": "f", "type": "STAGE_TYPE_CUSTOM", "custom_function": "f"},
                         {"id": "g", "type": "STAGE_TYPE_CUSTOM", "custom_function": "g"}], functions=["f", "g"])
    assert stage_cache_key(f, {}, "1") != stage_cache_key(g, {}, "1")


# ---- templates ------------------------------------------------------------------------------

TEMPLATE_STAGES = [
    {"id": "prep", "type": "STAGE_TYPE_DATA_PREPARATION", "parameters": {"dataset": "${params.dataset}"}},
    {"id": "train", "type": "STAGE_TYPE_MODEL_TRAINING", "dependencies": ["prep"],
     "parameters": {"data": "${prep.dataset_id}", "epochs": "${params.epochs}", "lr": "${params.lr}",
                    "layers": "${params.layers}", "options": "${params.options}", "early": "${params.early}",
                    "note": "run ${params.epochs} epochs on ${params.dataset}"},
     "retry": {"max_attempts": "${params.attempts}"}},
    {"id": "deploy", "type": "STAGE_TYPE_MODEL_DEPLOYMENT", "dependencies": ["train"],
     "condition": "train.accuracy >= ${params.min_accuracy}"},
]
TEMPLATE_PARAMETERS = [
    {"name": "dataset", "required": True, "description": "the dataset id"},
    {"name": "epochs", "type": "integer", "default_value": 10.0},
    {"name": "lr", "type": "number", "default_value": 0.01},
    {"name": "layers", "type": "list", "default_value": [64.0, 32.0]},
    {"name": "options", "type": "object", "default_value": {"seed": 1.0}},
    {"name": "early", "type": "boolean", "default_value": False},
    {"name": "attempts", "type": "integer", "required": True, "default_value": 2},
    {"name": "min_accuracy", "type": "number", "default_value": 0.9},
]


def test_template_parameters_are_normalised():
    parsed = parse_template_parameters(TEMPLATE_PARAMETERS)
    assert parsed[0] == {"name": "dataset", "description": "the dataset id", "type": "string", "required": True}
    assert parsed[1] == {"name": "epochs", "description": "", "type": "integer", "required": False, "default_value": 10}
    assert isinstance(parsed[1]["default_value"], int)
    assert parse_template_parameters(parsed) == parsed
    assert parse_template_parameters([]) == []


@pytest.mark.parametrize(
    "parameter, where, words",
    [
        ({"description": "no name"}, "name", "is required"),
        ({"name": "1abc"}, "name", "not a valid name"),
        ({"name": "has-dash"}, "name", "not a valid name"),
        ({"name": "x", "type": "float"}, "type", "'float' is not a type"),
        ({"name": "x", "type": "integer", "default_value": 1.5}, "default_value", "type is integer"),
        ({"name": "x", "type": "integer", "default_value": True}, "default_value", "type is integer"),
        ({"name": "x", "default_value": 3}, "default_value", "type is string"),
        ({"name": "x", "type": "list", "default_value": "a"}, "default_value", "type is list"),
        ({"name": "x", "type": "object", "default_value": [1]}, "default_value", "type is object"),
        ({"name": "x", "type": "boolean", "default_value": 0}, "default_value", "type is boolean"),
        ({"name": "x", "required": "yes"}, "required", "true or false"),
    ],
)
def test_bad_template_parameters(parameter, where, words):
    error = error_of(parse_template_parameters, [{"name": "ok"}, parameter])
    assert fields_of(error) == [f"template.parameters[1].{where}"]
    assert words in error.message


def test_duplicate_template_parameters():
    error = error_of(parse_template_parameters, [{"name": "a"}, {"name": "b"}, {"name": "a"}])
    assert fields_of(error) == ["template.parameters[2].name"] and "duplicate parameter 'a'" in error.message


def test_instantiate_fills_defaults_and_substitutes_typed_values():
    stages = instantiate_template(TEMPLATE_STAGES, TEMPLATE_PARAMETERS, {"dataset": "ds-7"})
    prep, train, deploy = stages
    assert prep["parameters"] == {"dataset": "ds-7"}
    assert train["parameters"] == {
        "data": "${prep.dataset_id}",  # stage references are left for run time
        "epochs": 10, "lr": 0.01, "layers": [64.0, 32.0], "options": {"seed": 1.0}, "early": False,
        "note": "run 10 epochs on ds-7",
    }
    assert isinstance(train["parameters"]["epochs"], int)
    assert train["retry"] == {"max_attempts": 2}
    assert deploy["condition"] == "train.accuracy >= 0.9"
    assert "${params.dataset}" in TEMPLATE_STAGES[0]["parameters"]["dataset"]  # the template is untouched
    parsed = parse_stages(stages)
    assert parsed[1].max_attempts == 2


def test_instantiate_uses_given_values_over_defaults():
    stages = instantiate_template(TEMPLATE_STAGES, TEMPLATE_PARAMETERS, {
        "dataset": "ds-1", "epochs": 3.0, "lr": 1, "layers": [8], "options": {}, "early": True, "attempts": 4,
        "min_accuracy": 0.75,
    })
    parameters = stages[1]["parameters"]
    assert (parameters["epochs"], parameters["lr"], parameters["layers"], parameters["options"], parameters["early"]) == (
        3, 1, [8], {}, True)
    assert stages[2]["condition"] == "train.accuracy >= 0.75"
    assert stages[1]["retry"]["max_attempts"] == 4


@pytest.mark.parametrize(
    "config, errors",
    [
        ({"dataset": "d", "epochz": 3}, {"config.epochz": "is not a parameter of this template"}),
        ({}, {"config.dataset": "is required"}),
        ({"dataset": "d", "epochs": 2.5}, {"config.epochs": "of type integer"}),
        ({"dataset": "d", "epochs": True}, {"config.epochs": "of type integer"}),
        ({"dataset": "d", "epochs": "10"}, {"config.epochs": "of type integer"}),
        ({"dataset": "d", "lr": False}, {"config.lr": "of type number"}),
        ({"dataset": "d", "lr": "0.1"}, {"config.lr": "of type number"}),
        ({"dataset": 5}, {"config.dataset": "of type string"}),
        ({"dataset": "d", "early": 1}, {"config.early": "of type boolean"}),
        ({"dataset": "d", "layers": {"a": 1}}, {"config.layers": "of type list"}),
        ({"dataset": "d", "options": [1]}, {"config.options": "of type object"}),
        ({"epochs": "x", "extra": 1}, {"config.extra": "not a parameter", "config.dataset": "is required",
                                       "config.epochs": "of type integer"}),
    ],
)
def test_instantiate_refuses_bad_configs(config, errors):
    error = error_of(instantiate_template, TEMPLATE_STAGES, TEMPLATE_PARAMETERS, config)
    assert sorted(fields_of(error)) == sorted(errors)
    for violation in error.violations:
        assert errors[violation.field] in violation.description


def test_instantiate_refuses_undeclared_and_valueless_parameters():
    stages = [{"id": "a", "type": "STAGE_TYPE_MODEL_TRAINING", "parameters": {"x": "${params.nope}", "y": "${params.opt}"}}]
    error = error_of(instantiate_template, stages, [{"name": "opt"}], {})
    assert fields_of(error) == ["template.stages[0].parameters.x", "config.opt"]
    assert "${params.nope} is not a parameter" in error.message and "no value and no default" in error.message
    # An optional parameter that no stage uses may stay unset.
    assert instantiate_template([{"id": "a", "type": "STAGE_TYPE_CUSTOM"}], [{"name": "opt"}], {}) == [
        {"id": "a", "type": "STAGE_TYPE_CUSTOM"}]
