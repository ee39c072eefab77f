"""ValidationRules: each rule's exact violation counts and example rows, batching, and malformed rules."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data import validation
from engine.data.validation import validate
from engine.errors import DataLoss, InvalidArgument


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "id": [1, 2, 2, 3, 1],
            "age": [10, -5, None, 200, 30],
            "color": ["red", "blue", None, "red", "green"],
            "zip": ["12345", "1234a", "99999", None, "00000"],
            "start": [1, 5, 3, None, 2],
            "end": [2, 4, 3, 1, 1],
            "n": ["1", "x", "2.5", None, "3"],
            "ok": [True, False, True, None, True],
        }
    )


def _only(report, rule, column=None):
    found = [i for i in report["issues"] if i["rule"] == rule and (column is None or i["column"] == column)]
    assert len(found) == 1, report["issues"]
    return found[0]


def test_no_rules_and_satisfied_rules_are_valid(frame):
    assert validate(frame, {}) == {"valid": True, "issues": [], "fail_on_violation": False}
    report = validate(frame, {"required_columns": ["id"], "min_rows": "5", "constraints": [{"column": "id", "min": 1, "max": 3}]})
    assert report["valid"] is True and report["issues"] == []


def test_required_columns_and_min_rows(frame):
    report = validate(frame, {"required_columns": ["id", "label"], "min_rows": "6", "fail_on_violation": True})
    assert report["valid"] is False
    assert report["fail_on_violation"] is True  # returned for the caller to act on
    missing = _only(report, "required_columns")
    assert missing["column"] == "label" and missing["violation_count"] == 0 and missing["example_rows"] == []
    assert "available columns: id, age" in missing["message"]
    assert "has 5 rows but min_rows requires at least 6" in _only(report, "min_rows")["message"]


def test_max_null_fraction_per_column(frame):
    report = validate(frame, {"max_null_fraction": 0.15})
    flagged = {i["column"]: (i["violation_count"], i["example_rows"]) for i in report["issues"]}
    assert flagged == {"age": (1, [2]), "color": (1, [2]), "zip": (1, [3]), "start": (1, [3]), "n": (1, [3]), "ok": (1, [3])}
    assert "20.0% empty (1 of 5 rows), above max_null_fraction 0.15" in _only(report, "max_null_fraction", "age")["message"]
    assert validate(frame, {"max_null_fraction": 0.2})["valid"] is True  # at the limit is allowed


def test_not_null_and_unique(frame):
    report = validate(frame, {"constraints": [{"column": "color", "not_null": True}, {"column": "id", "unique": True}]})
    nulls = _only(report, "not_null")
    assert (nulls["column"], nulls["violation_count"], nulls["example_rows"]) == ("color", 1, [2])
    dupes = _only(report, "unique")
    # Rows 2 and 4 repeat the values of rows 1 and 0; the first occurrences are not violations.
    assert (dupes["column"], dupes["violation_count"], dupes["example_rows"]) == ("id", 2, [2, 4])
    assert "(e.g. 2 at row 2)" in dupes["message"]


def test_unique_ignores_nulls():
    report = validate(pd.DataFrame({"k": ["a", None, None, "b"]}), {"constraints": [{"column": "k", "unique": True}]})
    assert report["valid"] is True


def test_min_and_max_skip_nulls(frame):
    report = validate(frame, {"constraints": [{"column": "age", "min": 0, "max": 120}]})
    low, high = _only(report, "min"), _only(report, "max")
    assert (low["violation_count"], low["example_rows"]) == (1, [1])
    assert (high["violation_count"], high["example_rows"]) == (1, [3])
    assert "below the minimum 0 (e.g. -5.0 at row 1)" in low["message"]
    assert "above the maximum 120" in high["message"]


def test_min_on_a_text_column_is_an_issue_not_a_crash(frame):
    issue = _only(validate(frame, {"constraints": [{"column": "color", "min": 1}]}), "min")
    assert issue["violation_count"] == 0 and "is string; min applies only to int64 and float64" in issue["message"]


def test_allowed_values_for_text_numbers_and_bools(frame):
    report = validate(
        frame,
        {
            "constraints": [
                {"column": "color", "allowed_values": ["red", "green"]},
                {"column": "id", "allowed_values": ["1", "2.0"]},  # compared as numbers
                {"column": "ok", "allowed_values": ["True"]},  # bools compared case-insensitively
            ]
        },
    )
    colors, ids, oks = (_only(report, "allowed_values", c) for c in ("color", "id", "ok"))
    assert (colors["violation_count"], colors["example_rows"]) == (1, [1])  # the null at row 2 is not_null's business
    assert "'blue' at row 1" in colors["message"]
    assert (ids["violation_count"], ids["example_rows"]) == (1, [3])
    assert (oks["violation_count"], oks["example_rows"]) == (1, [1])


def test_pattern_must_match_the_whole_value(frame):
    issue = _only(validate(frame, {"constraints": [{"column": "zip", "pattern": r"\d{5}"}]}), "pattern")
    assert (issue["violation_count"], issue["example_rows"]) == (1, [1])
    # "\d{3}" matches inside "12345" but not the whole value: all four non-null values violate.
    issue = _only(validate(frame, {"constraints": [{"column": "zip", "pattern": r"\d{3}"}]}), "pattern")
    assert (issue["violation_count"], issue["example_rows"]) == (4, [0, 1, 2, 4])


def test_data_type_counts_values_that_do_not_convert(frame):
    issue = _only(validate(frame, {"constraints": [{"column": "n", "data_type": "DATA_TYPE_INT64"}]}), "data_type")
    assert (issue["violation_count"], issue["example_rows"]) == (2, [1, 2])
    assert "is string and 2 values cannot be read as int64 (e.g. 'x' at row 1)" in issue["message"]
    issue = _only(validate(frame, {"constraints": [{"column": "n", "data_type": "float64"}]}), "data_type")
    assert (issue["violation_count"], issue["example_rows"]) == (1, [1])
    assert validate(frame, {"constraints": [{"column": "age", "data_type": 2}]})["valid"] is True  # enum number, same type


def test_conditions_count_rows_that_are_definitely_false(frame):
    report = validate(frame, {"conditions": ["end >= start", "`id` > 0"]})
    issue = _only(report, "condition")
    # Row 3 has no start: unknown, not a violation (as an SQL CHECK).
    assert (issue["violation_count"], issue["example_rows"]) == (2, [1, 4])
    assert "do not satisfy the condition 'end >= start'" in issue["message"]


def test_unknown_columns_in_rules_are_issues(frame):
    report = validate(frame, {"constraints": [{"column": "ghost", "not_null": True}], "conditions": ["spirit > 1 and id > 0"]})
    assert [(i["rule"], i["column"]) for i in report["issues"]] == [("column_exists", "ghost"), ("column_exists", "spirit")]
    assert "constraints[0] names column 'ghost'" in report["issues"][0]["message"]
    assert "conditions[0] ('spirit > 1 and id > 0')" in report["issues"][1]["message"]


def test_sample_rows_limits_example_rows_not_counts():
    frame = pd.DataFrame({"x": [None] * 30})
    issue = _only(validate(frame, {"constraints": [{"column": "x", "not_null": True}]}, sample_rows=3), "not_null")
    assert (issue["violation_count"], issue["example_rows"]) == (30, [0, 1, 2])


def test_parquet_is_read_in_batches_with_dataset_row_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "BATCH_ROWS", 4)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"k": [1, 2, 3, 4, 5, 1, 7, 2, 9, 10], "v": [0, 1, 0, 1, 0, 1, 0, 1, -1, -1]}), path)
    report = validate(str(path), {"constraints": [{"column": "k", "unique": True}, {"column": "v", "min": 0}], "conditions": ["v < 1"]})
    by_rule = {i["rule"]: (i["violation_count"], i["example_rows"]) for i in report["issues"]}
    # Duplicates are found across batch boundaries; row numbers run on from batch to batch.
    assert by_rule == {"unique": (2, [5, 7]), "min": (2, [8, 9]), "condition": (4, [1, 3, 5, 7])}


def test_missing_parquet_file_is_data_loss(tmp_path):
    with pytest.raises(DataLoss):
        validate(str(tmp_path / "gone.parquet"), {})


@pytest.mark.parametrize(
    "rules, field, fragment",
    [
        ({"constraints": [{"column": "zip", "pattern": "("}]}, "rules.constraints[0].pattern", "not a valid regular expression"),
        ({"constraints": [{"column": "zip"}, {"column": "n", "pattern": r"(a)\1"}]}, "rules.constraints[1].pattern", "RE2"),
        ({"conditions": ["id > 0", "id >"]}, "rules.conditions[1]", "not a valid expression"),
        ({"conditions": ["df.columns"]}, "rules.conditions[0]", "attribute access"),
        ({"constraints": [{"column": "age", "min": 5, "max": 1}]}, "rules.constraints[0].min", "greater than max"),
        ({"constraints": [{"not_null": True}]}, "rules.constraints[0].column", "is required"),
        ({"constraints": [{"column": "n", "data_type": "DATA_TYPE_DECIMAL"}]}, "rules.constraints[0].data_type", "not one of"),
        ({"constraints": [{"column": "n", "colour": 1}]}, "rules.constraints[0].colour", "not a validation setting"),
        ({"min_rows": "many"}, "rules.min_rows", "whole number"),
        ({"min_rows": -1}, "rules.min_rows", "0 or more"),
        ({"max_null_fraction": 1.5}, "rules.max_null_fraction", "between 0 and 1"),
        ({"max_null_fraction": "NaN"}, "rules.max_null_fraction", "must be a number"),
        ({"required_columns": "id"}, "rules.required_columns", "list of strings"),
        ({"fail_on_violation": "yes"}, "rules.fail_on_violation", "true or false"),
    ],
)
def test_malformed_rules_are_invalid_argument_on_their_path(frame, rules, field, fragment):
    with pytest.raises(InvalidArgument) as info:
        validate(frame, rules)
    assert info.value.violations[0].field == field
    assert fragment in info.value.message


def test_field_prefix_names_where_the_rules_came_from(frame):
    with pytest.raises(InvalidArgument) as info:
        validate(frame, {"conditions": ["a["]}, field_prefix="config.validation")
    assert info.value.violations[0].field == "config.validation.conditions[0]"


def test_a_condition_comparing_mismatched_kinds_is_blamed_on_the_condition(frame):
    with pytest.raises(InvalidArgument) as info:
        validate(frame, {"conditions": ["color > 1"]})
    assert info.value.violations[0].field == "rules.conditions[0]"


def test_data_type_timestamp_and_bool_follow_arrow_casts():
    frame = pd.DataFrame({
        "when": ["2024-01-01", "2024-01-01T00:00:00+02:00", "nope", None, "2024-13-01"],
        "flag": ["true", "False", "1", "yes", None],
    })
    report = validate(frame, {"constraints": [{"column": "when", "data_type": "timestamp"}, {"column": "flag", "data_type": "bool"}]})
    when, flag = _only(report, "data_type", "when"), _only(report, "data_type", "flag")
    assert (when["violation_count"], when["example_rows"]) == (2, [2, 4])
    assert (flag["violation_count"], flag["example_rows"]) == (1, [3])
