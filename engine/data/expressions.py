"""A safe little language of row conditions over DataFrame columns.

Users write conditions such as ``age >= 18 and country == 'NL'`` (FilterDataset) or
``end >= start`` (ValidationRules.conditions). They are parsed with Python's `ast` and
only a whitelist of node types is accepted; evaluation walks that tree with vectorised
pandas operations. Nothing is ever handed to eval/exec/pandas.eval/DataFrame.query, so
an expression can read the named columns and nothing else.

The language:
  * column names as identifiers (``price``) or backquoted (```unit price```, also for names
    that are Python keywords or contain other characters); names starting and ending with a
    double underscore are refused when bare;
  * literals: numbers, 'strings' / "strings", True, False, and None (only in ``x is None`` /
    ``x is not None``);
  * comparisons ``== != < <= > >=`` (chainable: ``0 <= x < 10``), ``x in [..]`` and
    ``x not in [..]`` with a list (or tuple) of literals;
  * ``and``, ``or``, ``not``; arithmetic ``+ - * / %`` on numbers (``+`` also joins text)
    and unary minus;
  * functions: isnull(x), notnull(x), abs(x), len(text), lower(text), upper(text),
    startswith(text, 'prefix').

Nulls follow SQL: a comparison with a null (or NaN) is *unknown*, ``and``/``or``/``not``
use three-valued logic, and an unknown row is not selected by `evaluate` (it counts as
False). `Expression.truth` keeps the unknowns, for callers (validation) that treat them
differently. Comparing values of different kinds (text with a number, say) is refused
rather than silently false everywhere.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InvalidArgument

# Long enough for any hand-written condition; bounds parse time and recursion depth.
MAX_EXPRESSION_LENGTH = 10_000
# Checking and evaluating recurse over the tree; a cap far above any real condition keeps
# both well inside Python's recursion limit.
MAX_DEPTH = 100

FUNCTIONS: dict[str, int] = {  # name -> number of arguments
    "isnull": 1,
    "notnull": 1,
    "abs": 1,
    "len": 1,
    "lower": 1,
    "upper": 1,
    "startswith": 2,
}

_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Mod: ("%", operator.mod),
}
_OPERATOR_HINTS = {
    ast.BitAnd: "'&' is not supported; use 'and'",
    ast.BitOr: "'|' is not supported; use 'or'",
    ast.Invert: "'~' is not supported; use 'not'",
    ast.Pow: "'**' is not supported",
    ast.FloorDiv: "'//' is not supported; use '/'",
}
_CONSTRUCTS = {
    "Attribute": "attribute access",
    "Subscript": "indexing",
    "Slice": "slicing",
    "Lambda": "lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "IfExp": "a conditional expression",
    "JoinedStr": "an f-string",
    "NamedExpr": "an assignment",
    "Dict": "a dict",
    "Set": "a set",
    "List": "a list outside 'in [...]'",
    "Tuple": "a tuple outside 'in (...)'",
    "Starred": "unpacking",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
}
_ALLOWED = (
    "allowed: column names (backquote names with spaces), numbers, 'text', True/False, comparisons, "
    "in [...], and/or/not, + - * / %, is None, and the functions " + ", ".join(f"{name}()" for name in FUNCTIONS)
)


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _replace_backquotes(source: str, field: str) -> tuple[str, dict[str, str]]:
    """Swap each ```name``` for a fresh identifier, leaving backquotes inside string literals alone.

    Returns the rewritten source and {identifier: column name}. The identifiers use a
    prefix that does not occur in the source, so they can never shadow a real column.
    """
    prefix = "_bq"
    while prefix in source:
        prefix += "_"
    out: list[str] = []
    names: dict[str, str] = {}
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char in "'\"":  # copy a string literal through untouched, escapes included
            j = i + 1
            while j < n and source[j] != char:
                j += 2 if source[j] == "\\" else 1
            out.append(source[i:j + 1])
            i = j + 1
        elif char == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise InvalidArgument.field(field, f"unterminated backquote at character {i + 1}; close the column name with `")
            name = source[i + 1:end]
            if not name:
                raise InvalidArgument.field(field, f"empty backquoted name at character {i + 1}; write `column name`")
            placeholder = f"{prefix}{len(names)}"
            names[placeholder] = name
            out.append(placeholder)
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), names


class _Checker:
    """Walks a parsed tree once, refusing anything outside the whitelist and collecting column names."""

    def __init__(self, expression: "Expression"):
        self.expression = expression
        self.columns: list[str] = []

    def refuse(self, node: ast.AST, why: str) -> InvalidArgument:
        return self.expression.error(f"{why} in {self.expression.segment(node)!r}; {_ALLOWED}")

    def check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
                raise self.refuse(node, _OPERATOR_HINTS.get(type(node.op), f"operator {type(node.op).__name__} is not allowed"))
            self.check(node.operand)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITHMETIC:
                raise self.refuse(node, _OPERATOR_HINTS.get(type(node.op), f"operator {type(node.op).__name__} is not allowed"))
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, ast.Compare):
            self.check_compare(node)
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif isinstance(node, ast.Constant):
            if node.value is None:
                raise self.refuse(node, "None may only be used as 'x is None' or 'x is not None'")
            if isinstance(node.value, bool) or type(node.value) in (int, float, str):
                return
            raise self.refuse(node, f"literal {node.value!r} is not allowed")
        else:
            kind = _CONSTRUCTS.get(type(node).__name__, type(node).__name__)
            raise self.refuse(node, f"{kind} is not allowed")

    def check_name(self, node: ast.Name) -> None:
        column = self.expression.names.get(node.id)
        if column is None:
            if _is_dunder(node.id):
                raise self.refuse(node, f"name {node.id!r} is not allowed")
            column = node.id
        if column not in self.columns:
            self.columns.append(column)

    def check_compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            left, right = operands[index], operands[index + 1]
            if isinstance(op, (ast.Is, ast.IsNot)):
                if len(node.ops) != 1 or not any(_is_none(side) for side in (left, right)):
                    raise self.refuse(node, "'is' / 'is not' may only test for None, e.g. 'x is None'")
                other = right if _is_none(left) else left
                if _is_none(other):
                    raise self.refuse(node, "'None is None' tests no column")
                self.check(other)
                return
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.List, ast.Tuple)) or index != len(node.ops) - 1:
                    raise self.refuse(node, "'in' needs a list of literals on its right, e.g. x in ['a', 'b']")
                for element in right.elts:
                    if not (isinstance(element, ast.Constant) and element.value is not None
                            and (isinstance(element.value, bool) or type(element.value) in (int, float, str))):
                        raise self.refuse(element, "the list after 'in' may only hold numbers, text and True/False")
                continue
            if any(_is_none(side) for side in (left, right)):
                raise self.refuse(node, "comparing with None is never true; write 'x is None' or isnull(x)")
        for index, operand in enumerate(operands):
            if index > 0 and isinstance(node.ops[index - 1], (ast.In, ast.NotIn)):
                continue  # the literal list, already checked
            self.check(operand)

    def check_call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            raise self.refuse(node, "only the listed functions can be called")
        if node.func.id not in FUNCTIONS:
            raise self.refuse(node, f"function {node.func.id!r} is not available")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse(node, f"{node.func.id}() takes plain arguments only")
        expected = FUNCTIONS[node.func.id]
        if len(node.args) != expected:
            raise self.refuse(node, f"{node.func.id}() takes {expected} argument{'s' if expected > 1 else ''}, got {len(node.args)}")
        for arg in node.args:
            self.check(arg)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# ---- evaluation -------------------------------------------------------------------------
# A value is either a Python scalar (from literals) or a pandas Series aligned with the frame.
# Kinds decide which operations make sense: "number", "text", "bool", "timestamp", "any"
# (an all-null column, compatible with everything) and "other".


def _kind(value: Any) -> str:
    if isinstance(value, pd.Series):
        dtype = value.dtype
        if pd.api.types.is_bool_dtype(dtype):
            return "bool"
        if pd.api.types.is_numeric_dtype(dtype):
            return "number"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "timestamp"
        inferred = pd.api.types.infer_dtype(value, skipna=True)
        return {
            "string": "text",
            "empty": "any",
            "boolean": "bool",
            "integer": "number",
            "floating": "number",
            "mixed-integer-float": "number",
            "datetime": "timestamp",
        }.get(inferred, "other")
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


_KIND_WORDS = {"number": "a number", "text": "text", "bool": "true/false", "timestamp": "a timestamp", "other": "a value"}


def _comparable(left: Any, right: Any) -> bool:
    a, b = _kind(left), _kind(right)
    if "any" in (a, b) or a == b or {a, b} == {"number", "bool"}:
        return True
    # A timestamp column compares with a quoted literal, which is parsed as a date/time.
    if {a, b} == {"timestamp", "text"}:
        text = right if b == "text" else left
        return not isinstance(text, pd.Series)
    return False


def _zone(series: pd.Series) -> Any:
    """The time zone of a timestamp Series (None when naive or not a datetime dtype)."""
    return getattr(series.dtype, "tz", None)


def _boolean(values: pd.Series, nulls: np.ndarray) -> pd.Series:
    """A nullable-boolean Series: `values` as True/False, unknown (NA) where `nulls`."""
    data = values.to_numpy(dtype=bool, na_value=False)
    mask = np.asarray(nulls, dtype=bool) | values.isna().to_numpy()
    return pd.Series(pd.arrays.BooleanArray(data, mask), index=values.index)


def _and(left: Any, right: Any) -> Any:
    """Three-valued `and` of Python bools and nullable-boolean Series (pandas' & is Kleene logic)."""
    if isinstance(left, pd.Series) or isinstance(right, pd.Series):
        return left & right
    return left and right


def _or(left: Any, right: Any) -> Any:
    if isinstance(left, pd.Series) or isinstance(right, pd.Series):
        return left | right
    return left or right


def _null_mask(value: Any, length: int) -> np.ndarray:
    if isinstance(value, pd.Series):
        return value.isna().to_numpy()
    return np.zeros(length, dtype=bool)


@dataclass
class Expression:
    """A parsed, whitelisted expression; `columns` are the column names it reads, in order."""

    source: str
    field: str
    tree: ast.Expression
    rewritten: str
    names: dict[str, str]
    columns: tuple[str, ...] = ()

    def error(self, description: str) -> InvalidArgument:
        return InvalidArgument.field(self.field, description)

    def segment(self, node: ast.AST) -> str:
        """The source text of `node`, with backquoted names shown as the user wrote them."""
        text = ast.get_source_segment(self.rewritten, node) or ast.unparse(node)
        for placeholder, name in sorted(self.names.items(), key=lambda item: -len(item[0])):
            text = text.replace(placeholder, f"`{name}`")
        return text

    def check_columns(self, available: Iterable[str]) -> None:
        """Raise InvalidArgument when the expression reads a column not in `available`."""
        available = list(available)
        unknown = [c for c in self.columns if c not in available]
        if unknown:
            raise self.error(
                f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {self.source!r}; "
                f"available columns: {', '.join(available)} (backquote names with spaces: `my column`)"
            )

    def truth(self, frame: pd.DataFrame) -> pd.Series:
        """Per row True / False / NA (unknown, because a value it depends on is null), as a nullable boolean Series."""
        self.check_columns(frame.columns)
        # Work on positional rows so operations never realign on a user's (maybe duplicated) index.
        local = frame.reset_index(drop=True)
        value = _Evaluator(self, local).eval(self.tree.body)
        if not isinstance(value, pd.Series):
            if not isinstance(value, bool):
                raise self.error(f"{self.source!r} gives {_KIND_WORDS[_kind(value)]}, not true/false; write a condition such as 'x > 0'")
            value = pd.Series(pd.array([value] * len(local), dtype="boolean"))
        elif _kind(value) not in ("bool", "any"):
            raise self.error(
                f"{self.source!r} gives {_KIND_WORDS.get(_kind(value), 'a value')} per row, not true/false; "
                f"write a condition such as 'x > 0'"
            )
        else:
            value = _boolean(value, value.isna().to_numpy())
        value.index = frame.index
        return value

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """A plain bool Series: True where the condition holds; unknown (null) rows are False."""
        return self.truth(frame).fillna(False).astype(bool)


class _Evaluator:
    def __init__(self, expression: Expression, frame: pd.DataFrame):
        self.x = expression
        self.frame = frame
        self.length = len(frame)

    def fail(self, node: ast.AST, why: str) -> InvalidArgument:
        return self.x.error(f"{why} in {self.x.segment(node)!r}")

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.frame[self.x.names.get(node.id, node.id)]
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        # Unreachable after _Checker; kept so a gap in the checker cannot become an evaluation.
        raise self.fail(node, f"{type(node).__name__} is not allowed")

    def truth_value(self, node: ast.AST) -> Any:
        """An operand of and/or/not: a Python bool or a nullable-boolean Series."""
        value = self.eval(node)
        kind = _kind(value)
        if kind not in ("bool", "any"):
            raise self.fail(node, f"{_KIND_WORDS.get(kind, 'a value')} is not true/false; compare it, e.g. 'x > 0'")
        if isinstance(value, pd.Series):
            return _boolean(value, value.isna().to_numpy())
        return value

    def bool_op(self, node: ast.BoolOp) -> Any:
        values = [self.truth_value(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = _and(result, value) if isinstance(node.op, ast.And) else _or(result, value)
        return result

    def unary(self, node: ast.UnaryOp) -> Any:
        if isinstance(node.op, ast.Not):
            value = self.truth_value(node.operand)
            return ~value if isinstance(value, pd.Series) else not value
        value = self.eval(node.operand)
        if _kind(value) not in ("number", "any"):
            raise self.fail(node, f"unary minus needs a number, not {_KIND_WORDS.get(_kind(value), 'a value')}")
        return -value if isinstance(node.op, ast.USub) else value

    def arithmetic(self, node: ast.BinOp) -> Any:
        symbol, function = _ARITHMETIC[type(node.op)]
        left, right = self.eval(node.left), self.eval(node.right)
        kinds = {_kind(left), _kind(right)} - {"any"}
        if not (kinds <= {"number"} or (symbol == "+" and kinds == {"text"})):
            words = " and ".join(_KIND_WORDS.get(k, "a value") for k in (_kind(left), _kind(right)))
            raise self.fail(node, f"'{symbol}' cannot combine {words}; arithmetic needs numbers ('+' also joins two texts)")
        try:
            return function(left, right)
        except ZeroDivisionError:
            raise self.fail(node, "division by zero") from None
        except (TypeError, ValueError) as exc:
            raise self.fail(node, f"cannot compute: {exc}") from None

    def compare(self, node: ast.Compare) -> Any:
        operands = [node.left, *node.comparators]
        left = self.eval(node.left)
        if isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            # The checker guarantees one side is None and the other an expression.
            value = self.eval(node.comparators[0]) if _is_none(node.left) else left
            if isinstance(value, pd.Series):
                nulls = value.isna()
                return _boolean(~nulls if isinstance(node.ops[0], ast.IsNot) else nulls, np.zeros(len(nulls), dtype=bool))
            return isinstance(node.ops[0], ast.IsNot)  # a literal is never None here
        result: Any = True
        for index, op in enumerate(node.ops):
            if isinstance(op, (ast.In, ast.NotIn)):
                part = self.membership(operands[index], left, operands[index + 1], negate=isinstance(op, ast.NotIn))
            else:
                right = self.eval(operands[index + 1])
                part = self.comparison(operands[index], left, op, operands[index + 1], right)
                left = right
            result = _and(result, part)
        return result

    def comparison(self, left_node: ast.AST, left: Any, op: ast.cmpop, right_node: ast.AST, right: Any) -> Any:
        symbol = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}[type(op)]
        shown = f"{self.x.segment(left_node)} {symbol} {self.x.segment(right_node)}"
        if not _comparable(left, right):
            raise self.x.error(
                f"cannot compare {_KIND_WORDS.get(_kind(left), 'a value')} with {_KIND_WORDS.get(_kind(right), 'a value')} "
                f"in {shown!r}; compare like with like (quote text, e.g. '12345')"
            )
        function = _COMPARISONS[type(op)]
        if not isinstance(left, pd.Series) and not isinstance(right, pd.Series):
            return function(left, right)
        if "timestamp" in (_kind(left), _kind(right)):
            zone = _zone(left if isinstance(left, pd.Series) else right)
            left, right = (self.as_timestamp(v, shown, zone) for v in (left, right))
        try:
            values = function(left, right)
        except (TypeError, ValueError) as exc:
            raise self.x.error(f"cannot compare in {shown!r}: {exc}") from None
        return _boolean(values, _null_mask(left, self.length) | _null_mask(right, self.length))

    def as_timestamp(self, value: Any, shown: str, zone: Any) -> Any:
        """A quoted literal compared with a timestamp column, parsed once (and reported when it is no date).

        A literal without an offset is read in the column's time zone; one with an offset
        against a column without a zone is refused, since the comparison would be ambiguous.
        """
        if not isinstance(value, str):
            return value
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise self.x.error(f"{value!r} in {shown!r} is not a date/time; write e.g. '2024-01-31' or '2024-01-31T12:00:00'") from None
        if stamp.tzinfo is None and zone is not None:
            return stamp.tz_localize(zone)
        if stamp.tzinfo is not None and zone is None:
            raise self.x.error(f"{value!r} in {shown!r} has a time zone but the column has none; drop the offset")
        return stamp

    def membership(self, left_node: ast.AST, left: Any, list_node: ast.AST, *, negate: bool) -> Any:
        values = [element.value for element in list_node.elts]  # type: ignore[attr-defined]
        for element, value in zip(list_node.elts, values):  # type: ignore[attr-defined]
            if not _comparable(left, value):
                raise self.fail(
                    element,
                    f"{self.x.segment(left_node)!r} is {_KIND_WORDS.get(_kind(left), 'a value')} but the list holds "
                    f"{_KIND_WORDS[_kind(value)]}",
                )
        if not isinstance(left, pd.Series):
            return (left in values) != negate
        if _kind(left) == "timestamp":  # isin compares text with timestamps as never equal; parse it
            shown = f"{self.x.segment(left_node)} in {self.x.segment(list_node)}"
            values = [self.as_timestamp(v, shown, _zone(left)) for v in values]
        found = left.isin(values).to_numpy()
        return _boolean(pd.Series(found != negate), left.isna().to_numpy())

    def call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]
        args = [self.eval(a) for a in node.args]
        value = args[0]
        kind = _kind(value)
        if name in ("isnull", "notnull"):
            if not isinstance(value, pd.Series):
                return name == "notnull"
            nulls = value.isna()
            return _boolean(nulls if name == "isnull" else ~nulls, np.zeros(len(nulls), dtype=bool))
        need = "number" if name == "abs" else "text"
        if kind not in (need, "any"):
            raise self.fail(node, f"{name}() needs {_KIND_WORDS[need]}, not {_KIND_WORDS.get(kind, 'a value')}")
        if name == "startswith":
            prefix = args[1]
            if not isinstance(prefix, str):
                raise self.fail(node, "the second argument of startswith() must be quoted text, e.g. startswith(name, 'A')")
            if not isinstance(value, pd.Series):
                return value.startswith(prefix)
            return _boolean(value.astype(object).str.startswith(prefix), value.isna().to_numpy())
        if not isinstance(value, pd.Series):
            return {"abs": abs, "len": len, "lower": str.lower, "upper": str.upper}[name](value)
        if name == "abs":
            return value.abs()
        if kind == "any":  # all null: every result is null too
            return pd.Series([np.nan] * len(value), dtype=float if name == "len" else object)
        text = value.str
        return {"len": text.len, "lower": text.lower, "upper": text.upper}[name]()


def _depth(tree: ast.AST) -> int:
    """How deeply the tree nests, found without recursion (so a pathological input cannot overflow the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse(expression: str, field: str = "expression") -> Expression:
    """Parse and check `expression` without any data; errors are InvalidArgument on `field`."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgument.field(field, "is empty; give a condition over columns, e.g. \"age >= 18 and country == 'NL'\"")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise InvalidArgument.field(field, f"is {len(expression)} characters long; the limit is {MAX_EXPRESSION_LENGTH}")
    source = expression.strip()
    rewritten, names = _replace_backquotes(source, field)
    try:
        tree = ast.parse(rewritten, mode="eval")
    except SyntaxError as exc:
        where = f" at character {exc.offset}" if exc.offset else ""
        raise InvalidArgument.field(field, f"{source!r} is not a valid expression: {exc.msg}{where}") from None
    except (RecursionError, MemoryError, ValueError):
        raise InvalidArgument.field(field, f"{source[:80]!r}... is nested too deeply; simplify the expression") from None
    if _depth(tree) > MAX_DEPTH:
        raise InvalidArgument.field(field, f"is nested more than {MAX_DEPTH} levels deep; simplify the expression")
    parsed = Expression(source=source, field=field, tree=tree, rewritten=rewritten, names=names)
    checker = _Checker(parsed)
    checker.check(tree.body)
    parsed.columns = tuple(checker.columns)
    return parsed


def evaluate(frame: pd.DataFrame, expression: str | Expression, field: str = "expression") -> pd.Series:
    """Rows of `frame` where `expression` holds, as a bool Series on the frame's index.

    Rows where it cannot be decided because a value is null count as False. Errors
    (bad syntax, refused constructs, unknown columns, mismatched kinds) are
    InvalidArgument on `field`.
    """
    parsed = expression if isinstance(expression, Expression) else parse(expression, field)
    return parsed.evaluate(frame)

