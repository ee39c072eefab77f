"""The safe expression language: every feature, null handling, and every refused construct."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.data.expressions import evaluate, parse
from engine.errors import InvalidArgument


@pytest.fixture
def frame():
    # A deliberately odd index: results must come back on it, positionally right.
    return pd.DataFrame(
        {
            "a": [1, None, 3, 4],
            "s": ["x", None, "Ab", "ab"],
            "flag": [True, None, False, True],
            "unit price": [1.0, 2.0, 3.0, 4.0],
            "start": [1, 2, 3, 4],
            "end": [2, 1, None, 5],
            "when": pd.to_datetime(["2024-01-01", "2023-01-01", None, "2025-06-30"]),
            "class": [1, 2, 3, 4],
        },
        index=[10, 10, 11, 12],
    )


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("a > 1", [False, False, True, True]),
        ("a == 3", [False, False, True, False]),
        ("a != 3", [True, False, False, True]),
        ("a <= 3", [True, False, True, False]),
        ("a >= 3 and a < 4", [False, False, True, False]),
        ("0 < a < 4", [True, False, True, False]),
        ("a > 3 or s == 'x'", [True, False, False, True]),
        ("not a > 1", [True, False, False, False]),  # null stays unknown under not
        ("a is None", [False, True, False, False]),
        ("a is not None", [True, False, True, True]),
        ("isnull(s)", [False, True, False, False]),
        ("notnull(s)", [True, False, True, True]),
        ("`unit price` * 2 >= 4", [False, True, True, True]),
        ("`class` + 1 == 3", [False, True, False, False]),
        ("a - 1 == 0", [True, False, False, False]),
        ("a / 2 == 1.5", [False, False, True, False]),
        ("a % 2 == 1", [True, False, True, False]),
        ("-a < -2", [False, False, True, True]),
        ("abs(-a) == 3", [False, False, True, False]),
        ("s in ['x', 'ab']", [True, False, False, True]),
        ("s not in ['x']", [False, False, True, True]),
        ("a in (1, 4)", [True, False, False, True]),
        ("lower(s) == 'ab'", [False, False, True, True]),
        ("upper(s) == 'AB'", [False, False, True, True]),
        ("len(s) == 2", [False, False, True, True]),
        ("startswith(s, 'A')", [False, False, True, False]),
        ("s + '!' == 'x!'", [True, False, False, False]),
        ("s < 'b'", [False, False, True, True]),
        ("flag", [True, False, False, True]),
        ("not flag", [False, False, True, False]),
        ("flag and a > 2", [False, False, False, True]),
        ("flag or a > 2", [True, False, True, True]),
        ("end >= start", [True, False, False, True]),
        ("when >= '2024-01-01'", [True, False, False, True]),
        ("True", [True, True, True, True]),
        ("1 == 2", [False, False, False, False]),
        ("'it''s' == 'x' or s == \"x\"", [True, False, False, False]),
    ],
)
def test_expression_selects_the_expected_rows(frame, expression, expected):
    result = evaluate(frame, expression)
    assert result.dtype == bool
    assert list(result.index) == [10, 10, 11, 12]
    assert result.tolist() == expected


def test_parse_reports_the_columns_read_including_backquoted_names():
    assert parse("`unit price` > 1 and a < `unit price` and isnull(s)").columns == ("unit price", "a", "s")
    assert parse("'`not a column`' == s").columns == ("s",)  # backquotes inside a string are text


def test_expression_over_an_all_null_column_selects_nothing():
    frame = pd.DataFrame({"x": [None, None]}, dtype=object)
    assert evaluate(frame, "x > 1").tolist() == [False, False]
    assert evaluate(frame, "x is None").tolist() == [True, True]


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("__import__('os')", "function '__import__' is not available"),
        ("open('/etc/passwd')", "function 'open' is not available"),
        ("df.columns", "attribute access is not allowed in 'df.columns'"),
        ("a.__class__", "attribute access"),
        ("a[0]", "indexing is not allowed in 'a[0]'"),
        ("(lambda: 1)()", "only the listed functions can be called"),
        ("lambda: 1", "lambda is not allowed"),
        ("[x for x in a]", "a comprehension is not allowed"),
        ("__builtins__", "name '__builtins__' is not allowed"),
        ("a if flag else 1", "a conditional expression is not allowed"),
        ("f'{a}' == s", "an f-string is not allowed"),
        ("{1: 2}", "a dict is not allowed"),
        ("a & flag", "'&' is not supported; use 'and'"),
        ("a | flag", "'|' is not supported; use 'or'"),
        ("~flag", "'~' is not supported; use 'not'"),
        ("a ** 2 > 1", "'**' is not supported"),
        ("a == None", "write 'x is None' or isnull(x)"),
        ("a is 1", "'is' / 'is not' may only test for None"),
        ("s in other", "'in' needs a list of literals"),
        ("s in [a]", "the list after 'in' may only hold"),
        ("lower(s, 'x')", "lower() takes 1 argument, got 2"),
        ("startswith(s, prefix='a')", "startswith() takes plain arguments only"),
        ("b'x' == s", "literal b'x' is not allowed"),
        ("a >", "is not a valid expression"),
        ("a > 1; b", "is not a valid expression"),
        ("`unclosed > 1", "unterminated backquote"),
        ("", "is empty"),
    ],
)
def test_refused_constructs_name_the_offending_part(expression, fragment):
    with pytest.raises(InvalidArgument) as info:
        parse(expression, field="filter.expression")
    assert info.value.violations[0].field == "filter.expression"
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("zzz > 1", "unknown column 'zzz' in 'zzz > 1'; available columns: a, s, flag, unit price"),
        ("s > 1", "cannot compare text with a number in 's > 1'"),
        ("a in ['1']", "'a' is a number but the list holds text"),
        ("a + s == 1", "'+' cannot combine a number and text"),
        ("'a' * 3 == s", "'*' cannot combine text and a number"),
        ("a + 1", "gives a number per row, not true/false"),
        ("a and flag", "a number is not true/false"),
        ("abs(s) > 1", "abs() needs a number, not text"),
        ("lower(a) == 'x'", "lower() needs text, not a number"),
        ("startswith(s, a)", "second argument of startswith() must be quoted text"),
        ("1 / 0 > 1", "division by zero in '1 / 0'"),
        ("when > 5", "cannot compare a timestamp with a number"),
        ("when > 'soon'", "'soon' in \"when > 'soon'\" is not a date/time"),
    ],
)
def test_errors_found_against_the_data(frame, expression, fragment):
    with pytest.raises(InvalidArgument) as info:
        evaluate(frame, expression, "expression")
    assert info.value.violations[0].field == "expression"
    assert fragment in info.value.message


def test_columns_shadow_nothing_and_builtins_are_not_reachable(frame):
    # Names are only ever columns: 'abs' without a call is looked up as a column, not the builtin.
    with pytest.raises(InvalidArgument, match="unknown column 'abs'"):
        evaluate(frame, "abs > 1")
    frame = frame.assign(abs=[5, 5, 0, 0])
    assert evaluate(frame, "abs > 1").tolist() == [True, True, False, False]


def test_timestamp_literals_are_parsed_in_the_column_time_zone():
    stamps = pd.to_datetime(["2024-01-01", None, "2023-05-05"])
    frame = pd.DataFrame({"naive": stamps, "zoned": stamps.tz_localize("Europe/Amsterdam")})
    assert evaluate(frame, "naive in ['2024-01-01']").tolist() == [True, False, False]
    assert evaluate(frame, "naive not in ['2023-05-05']").tolist() == [True, False, False]
    # Midnight in Amsterdam (winter) is 23:00 UTC the day before.
    assert evaluate(frame, "zoned >= '2024-01-01'").tolist() == [True, False, False]
    assert evaluate(frame, "zoned >= '2023-12-31T23:30:00Z'").tolist() == [False, False, False]
    with pytest.raises(InvalidArgument, match="has a time zone but the column has none"):
        evaluate(frame, "naive > '2024-01-01T00:00:00Z'")


def test_pathological_inputs_are_refused_not_crashed():
    with pytest.raises(InvalidArgument, match="nested more than 100 levels"):
        parse("not " * 500 + "a")
    with pytest.raises(InvalidArgument, match="the limit is 10000"):
        parse("a > 1 and " * 2000 + "a > 1")
