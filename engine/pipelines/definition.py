"""Pipeline definitions: stage validation, ordering, references, conditions, retries, templates.

Pure functions, no I/O. Stages arrive as dicts in the proto's JSON form with snake_case keys
(``json_format.MessageToDict(stage, preserving_proto_field_name=True)``)::

    {"id": "train", "type": "STAGE_TYPE_MODEL_TRAINING", "dependencies": ["prepare"],
     "parameters": {"dataset": "${prepare.dataset_id}"}, "timeout": "30s",
     "retry": {"max_attempts": 3, "backoff": "BACKOFF_TYPE_EXPONENTIAL",
               "initial_delay": "1s", "max_delay": "10s"},
     "condition": "validate.accuracy >= 0.9", "custom_function": "", "disable_cache": False}

References
    ``${stage_id.key}`` / ``${stage_id.key.sub}`` in parameter strings read an upstream stage's
    outputs, ``${params.name}`` a template's or an execution's parameters; ``$${...}`` is a
    literal ``${...}``. A string that is exactly one reference becomes the referenced value with
    its type; references inside longer text are formatted as text.

Conditions
    The expression language of `engine.data.expressions` (its parser and whitelist; never
    eval), where the names are stage outputs: ``validate.accuracy >= 0.9 and
    train.model_version != ''``. ``${validate.accuracy}`` is accepted too, and a backquoted
    name (```train.odd key```) reaches keys that are not identifiers. Write spaces around a
    minus sign that follows a stage id (``a.x - b.y``), since stage ids may contain '-'.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.data import expressions
from engine.errors import FieldViolation, InvalidArgument, json_kind
from engine.names import validate_id

STAGE_TYPES = (
    "data_preparation",
    "data_validation",
    "feature_extraction",
    "model_training",
    "model_validation",
    "model_evaluation",
    "model_deployment",
    "custom",
)
BACKOFF_TYPES = ("fixed", "linear", "exponential")
TEMPLATE_TYPES = ("string", "integer", "number", "boolean", "list", "object")

# The reserved first part of ${params.name}; no stage may use it as its id.
PARAMS = "params"
# ${input.key} reads the execution's input (ExecutePipelineRequest.input): no stage may take the id.
INPUT = "input"

_STAGE_FIELDS = (
    "id", "type", "dependencies", "parameters", "timeout", "retry", "condition", "custom_function", "disable_cache",
)
_RETRY_FIELDS = ("max_attempts", "backoff", "initial_delay", "max_delay")
_TEMPLATE_PARAMETER_FIELDS = ("name", "description", "default_value", "required", "type")
_STAGE_TYPE_PREFIX = "STAGE_TYPE_"
_BACKOFF_PREFIX = "BACKOFF_TYPE_"


@dataclass(frozen=True)
class Stage:
    """One validated stage."""

    id: str
    type: str  # one of STAGE_TYPES
    dependencies: tuple[str, ...]
    parameters: dict
    timeout_seconds: float  # limit for one attempt; 0 = none
    max_attempts: int  # attempts in all, the first included; >= 1
    backoff: str  # one of BACKOFF_TYPES
    initial_delay: float  # seconds
    max_delay: float  # seconds; 0 = no cap
    condition: str  # "" = always run
    custom_function: str  # custom stages only
    cache: bool  # False when the stage asked for disable_cache


# ---- errors -----------------------------------------------------------------------------


def _raise(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument("; ".join(f"{v.field}: {v.description}" for v in violations), violations=violations)


def _violation(field: str, description: str) -> FieldViolation:
    return FieldViolation(field, description)


def _names(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(values) if values else "(none)"


# ---- references -------------------------------------------------------------------------

# `$${...}` (an escaped, literal `${...}`) or `${...}`.
_REFERENCE = re.compile(r"(\$?)\$\{([^{}]*)\}")
_REFERENCE_BODY = re.compile(r"^([a-z][a-z0-9-]*)((?:\.[A-Za-z0-9_-]+)+)$")
_KEEP = object()  # a substitution that leaves the reference as it is


@dataclass(frozen=True)
class _Ref:
    text: str  # as written, e.g. "${train.metrics.f1}"
    stage: str | None  # None when malformed
    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join((self.stage or "", *self.path))


def _parse_ref(match: re.Match) -> _Ref | None:
    """The reference a match of _REFERENCE stands for; None for an escaped `$${...}`."""
    if match.group(1):
        return None
    body = _REFERENCE_BODY.match(match.group(2).strip())
    if not body:
        return _Ref(match.group(0), None, ())
    return _Ref(match.group(0), body.group(1), tuple(body.group(2)[1:].split(".")))


def _refs_in_text(text: str) -> list[_Ref]:
    return [ref for ref in (_parse_ref(m) for m in _REFERENCE.finditer(text)) if ref is not None]


def _walk_strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """(field path, string) for every string in a JSON-like value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{index}]")


def references(value: Any) -> set[str]:
    """Stage ids that `value` (a string, or lists/dicts of them) references as ${stage_id.key}; not "params"."""
    return {
        ref.stage
        for _, text in _walk_strings(value, "")
        for ref in _refs_in_text(text)
        if ref.stage is not None and ref.stage not in (PARAMS, INPUT)
    }


def _describe(value: Any, limit: int = 80) -> str:
    """A value as a condition or message shows it: 'text', 0.85, True, None, [1, 2]."""
    if isinstance(value, (str, bool)) or value is None:
        text = repr(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lookup(outputs: dict[str, Any] | None, stage: str, path: Sequence[str], shown: str, field: str,
            what: str = "outputs") -> Any:
    """outputs[stage][path[0]][path[1]]...; InvalidArgument naming `shown` and the keys that exist."""
    if stage == PARAMS:
        if outputs is None or path[0] not in outputs:
            given = sorted(outputs) if outputs else []
            raise InvalidArgument.field(field, f"{shown}: there is no parameter {path[0]!r}; parameters: {_names(given)}")
        value, start, where = outputs[path[0]], 1, f"params.{path[0]}"
    else:
        outputs = outputs or {}
        if stage not in outputs:
            raise InvalidArgument.field(
                field, f"{shown}: stage {stage!r} has no {what}; stages with {what}: {_names(sorted(outputs))}"
            )
        value, start, where = outputs[stage], 0, stage
    for key in path[start:]:
        if isinstance(value, dict):
            if key not in value:
                kind = "output" if where == stage else "key"
                raise InvalidArgument.field(
                    field, f"{shown}: {where} has no {kind} {key!r}; it has: {_names(sorted(map(str, value)))}"
                )
            value = value[key]
        elif isinstance(value, list) and key.isdigit():
            if int(key) >= len(value):
                raise InvalidArgument.field(field, f"{shown}: {where} has {len(value)} items, so no item {key}")
            value = value[int(key)]
        else:
            raise InvalidArgument.field(
                field, f"{shown}: {where} is {_describe(value)}, which has no key {key!r}"
            )
        where = f"{where}.{key}"
    return value


def _as_text(value: Any) -> str:
    """A value as it reads inside a longer string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _substitute(value: Any, replace: Callable[[_Ref, str], Any], path: str) -> Any:
    """`value` with each reference replaced by replace(ref, field) (unless that returns _KEEP), recursively."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            ref = _parse_ref(whole)
            if ref is not None:
                result = replace(ref, path)
                return value if result is _KEEP else copy.deepcopy(result)

        def text(match: re.Match) -> str:
            ref = _parse_ref(match)
            if ref is None:  # $${...} -> literal ${...}
                return match.group(0)[1:]
            result = replace(ref, path)
            return match.group(0) if result is _KEEP else _as_text(result)

        return _REFERENCE.sub(text, value)
    if isinstance(value, dict):
        return {key: _substitute(item, replace, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_substitute(item, replace, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _malformed(ref: _Ref) -> str:
    return (f"{ref.text} is not a reference: write ${{stage_id.key}} (e.g. ${{train.model_version}}) or "
            f"${{params.name}}, or $${{...}} for a literal ${{...}}")


def resolve(value: Any, outputs: dict[str, dict], params: dict | None = None, *, field: str = "parameters") -> Any:
    """`value` with every ${stage_id.key...} and ${params.name} replaced, recursively through lists and dicts.

    A string that is exactly one reference becomes the referenced value with its type; a
    reference inside longer text is formatted as text (numbers as numbers, true/false,
    lists and objects as JSON). A missing stage, key or parameter is InvalidArgument on the
    field path (`field`.key[0]...) naming the reference and what exists.
    """

    def replace(ref: _Ref, path: str) -> Any:
        if ref.stage is None:
            raise InvalidArgument.field(path, _malformed(ref))
        if ref.stage == PARAMS:
            return _lookup(params, PARAMS, ref.path, ref.text, path)
        return _lookup(outputs, ref.stage, ref.path, ref.text, path)

    return _substitute(value, replace, field)


# ---- conditions -------------------------------------------------------------------------

# A stage output named bare in a condition: stage_id.key(.sub...), keys being identifiers.
_BARE_NAME = re.compile(r"[a-z][a-z0-9-]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_CONDITION_ALLOWED = (
    "allowed: stage outputs as stage_id.key (backquote keys with other characters: `stage.my key`), numbers, "
    "'text', True/False, comparisons, in [...], and/or/not, + - * / %, is None, and the functions "
    + ", ".join(f"{name}()" for name in expressions.FUNCTIONS)
)


@dataclass(frozen=True)
class _Condition:
    source: str  # as the user wrote it, stripped
    parsed: expressions.Expression  # over backquoted names
    names: tuple[tuple[str, str, tuple[str, ...]], ...]  # (column name, stage id, key path), in order
    field: str
    unwrap: Callable[[str], str]  # backquoted text -> as the user would write it


def _rewrite(source: str) -> tuple[str, str, set[str]]:
    """Backquote each stage output named bare or as ${...}.

    Returns (backquoted source, source with each name blanked to '_'s of the same length,
    used to report syntax errors at the user's own character positions, the names inserted).
    String literals and backquoted names are copied through untouched.
    """
    quoted: list[str] = []
    blanked: list[str] = []
    inserted: set[str] = set()
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char in "'\"`":
            j = i + 1
            while j < n and source[j] != char:
                j += 2 if char != "`" and source[j] == "\\" else 1
            piece = source[i:j + 1]
            quoted.append(piece)
            blanked.append(piece if char != "`" else "_" * len(piece))
            i = j + 1
            continue
        if char == "$":
            match = _REFERENCE.match(source, i)
            ref = _parse_ref(match) if match and not match.group(1) else None
            if ref is not None and ref.stage is not None:
                name = ref.dotted
                quoted.append(f"`{name}`")
                blanked.append("_" * len(match.group(0)))
                inserted.add(name)
                i = match.end()
                continue
        elif i == 0 or not (source[i - 1].isalnum() or source[i - 1] in "_."):
            match = _BARE_NAME.match(source, i)
            if match and not (match.end() < n and (source[match.end()].isalnum() or source[match.end()] == "_")):
                rest = source[match.end():].lstrip()
                if not rest.startswith("("):  # x.y(...) is a method call: left for the whitelist to refuse
                    name = match.group(0)
                    quoted.append(f"`{name}`")
                    blanked.append("_" * len(name))
                    inserted.add(name)
                    i = match.end()
                    continue
        quoted.append(char)
        blanked.append(char)
        i += 1
    return "".join(quoted), "".join(blanked), inserted


def _translate(error: InvalidArgument, unwrap: Callable[[str], str]) -> InvalidArgument:
    """An error of the expressions module, worded for stage outputs rather than columns."""

    def fix(description: str) -> str:
        head, allowed, _ = description.partition("; allowed:")
        text = unwrap(head)
        text = text.replace("unknown column", "unknown name").replace("available columns", "available names")
        return f"{text}; {_CONDITION_ALLOWED}" if allowed else text

    violations = [FieldViolation(v.field, fix(v.description), v.reason) for v in error.violations]
    if not violations:
        return InvalidArgument(unwrap(error.message))
    return InvalidArgument("; ".join(f"{v.field}: {v.description}" for v in violations), violations=violations)


def _parse_condition(condition: str, field: str) -> _Condition:
    if not isinstance(condition, str):
        raise InvalidArgument.field(field, f"must be text, e.g. \"validate.accuracy >= 0.9\", not {_describe(condition)}")
    source = condition.strip()
    if len(source) > expressions.MAX_EXPRESSION_LENGTH:
        raise InvalidArgument.field(field, f"is {len(source)} characters long; the limit is {expressions.MAX_EXPRESSION_LENGTH}")
    quoted, blanked, inserted = _rewrite(source)
    pattern = re.compile("`(" + "|".join(re.escape(name) for name in sorted(inserted, key=len, reverse=True)) + ")`") \
        if inserted else None

    def unwrap(text: str) -> str:
        return pattern.sub(r"\1", text).replace(quoted, source) if pattern else text

    # Syntax first, on a same-length copy, so positions are the user's own.
    try:
        ast.parse(blanked, mode="eval")
    except SyntaxError as exc:
        where = f" at character {exc.offset}" if exc.offset else ""
        raise InvalidArgument.field(field, f"{source!r} is not a valid expression: {exc.msg}{where}") from None
    except (RecursionError, MemoryError, ValueError):
        pass  # the expressions module reports these
    try:
        parsed = expressions.parse(quoted, field)
    except InvalidArgument as exc:
        raise _translate(exc, unwrap) from None
    names = []
    for column in parsed.columns:
        stage, dot, rest = column.partition(".")
        if not dot or not stage or not rest:
            raise InvalidArgument.field(
                field,
                f"{column!r} in {source!r} is not a stage output: name outputs as stage_id.key, e.g. "
                f"'validate.accuracy >= 0.9'",
            )
        names.append((column, stage, tuple(rest.split("."))))
    return _Condition(source, parsed, tuple(names), field, unwrap)


def condition_references(condition: str, *, field: str = "condition") -> set[str]:
    """Stage ids a condition reads; InvalidArgument when it does not parse."""
    if not condition or not condition.strip():
        return set()
    return {stage for _, stage, _ in _parse_condition(condition, field).names}


def evaluate_condition(condition: str, outputs: dict[str, dict], *, field: str = "condition") -> tuple[bool, str]:
    """Whether `condition` holds on the upstream `outputs` ({stage_id: {key: value}}), and why.

    The reason names the values read and the part that decided, e.g. "validate.accuracy is
    0.85, so 'validate.accuracy >= 0.9' is false"; it suits a skip reason. An empty condition
    holds. A condition that reads a null value is unknown, which counts as false. Errors (bad
    syntax, refused constructs, unknown stages or keys, mismatched kinds) are InvalidArgument.
    """
    if condition is None or (isinstance(condition, str) and not condition.strip()):
        return True, "no condition"
    parsed = _parse_condition(condition, field)
    values = {
        column: _lookup(outputs, stage, path, ".".join((stage, *path)), field)
        for column, stage, path in parsed.names
    }
    series = {}
    for column, value in values.items():
        if isinstance(value, (list, dict, tuple)):
            series[column] = pd.Series([None], dtype=object)
            series[column].iloc[0] = value
        else:
            series[column] = pd.Series([value])
    frame = pd.DataFrame(series, index=[0]) if series else pd.DataFrame(index=[0])

    def truth(expression: expressions.Expression) -> bool | None:
        try:
            value = expression.truth(frame).iloc[0]
        except InvalidArgument as exc:
            raise _translate(exc, parsed.unwrap) from None
        return None if pd.isna(value) else bool(value)

    def part(node: ast.AST) -> tuple[expressions.Expression, str]:
        text = parsed.parsed.segment(node)
        return expressions.parse(text, field), parsed.unwrap(text)

    def said(expression: expressions.Expression) -> str:
        shown = [f"{name} is {_describe(values[name])}" for name in dict.fromkeys(expression.columns)]
        return " and ".join(shown) + ", so " if shown else ""

    def verdict(result: bool | None) -> str:
        return "true" if result else "false" if result is False else "unknown (a value it reads is None), which counts as false"

    def why_not(node: ast.AST, expression: expressions.Expression, shown: str, result: bool | None) -> str:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for child in node.values:
                child_expression, child_shown = part(child)
                child_result = truth(child_expression)
                if child_result is not True:
                    return why_not(child, child_expression, child_shown, child_result)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            reasons = []
            for child in node.values:
                child_expression, child_shown = part(child)
                reasons.append(why_not(child, child_expression, child_shown, truth(child_expression)))
            return "; ".join(reasons)
        return f"{said(expression)}{shown!r} is {verdict(result)}"

    result = truth(parsed.parsed)
    if result:
        return True, f"{said(parsed.parsed)}{parsed.source!r} is true"
    return False, why_not(parsed.parsed.tree.body, parsed.parsed, parsed.source, result)


# ---- stages -----------------------------------------------------------------------------

_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")


def _seconds(value: Any, field: str, violations: list[FieldViolation], what: str) -> float:
    """A proto JSON duration ("30s", "1.500s") or a number of seconds; >= 0."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value.strip())
        seconds = None
        if match:
            seconds = int(match.group(2)) + (int(match.group(3).ljust(9, "0")) / 1e9 if match.group(3) else 0.0)
            seconds = -seconds if match.group(1) else seconds
    else:
        seconds = None
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        violations.append(_violation(field, f"{_describe(value)} is not a duration: write seconds with an 's', e.g. \"30s\" or \"1.5s\""))
        return 0.0
    if seconds < 0:
        violations.append(_violation(field, f"{_describe(value)} is negative; {what}"))
        return 0.0
    return seconds


def _enum(value: Any, prefix: str, names: Sequence[str]) -> str | None:
    """The lowercase name of a proto enum given as "PREFIX_NAME", "name" or its number; None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return names[value - 1] if 1 <= value <= len(names) else None
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if text.startswith(prefix):
        text = text[len(prefix):]
    text = text.lower()
    return text if text in names else None


def _stage_fields(raw: dict, prefix: str, violations: list[FieldViolation], functions: Collection[str]) -> dict:
    """Checks one stage's own fields; returns the values for a Stage (some maybe placeholders after errors)."""
    for key in raw:
        if key not in _STAGE_FIELDS:
            violations.append(_violation(f"{prefix}.{key}", f"is not a stage field; stage fields: {', '.join(_STAGE_FIELDS)}"))

    stage_id = raw.get("id")
    if not stage_id:
        violations.append(_violation(f"{prefix}.id", "is required: give the stage an id unique in the pipeline, e.g. \"train\""))
        stage_id = ""
    elif not isinstance(stage_id, str):
        violations.append(_violation(f"{prefix}.id", f"must be text, not {_describe(stage_id)}"))
        stage_id = ""
    else:
        try:
            validate_id(stage_id, f"{prefix}.id")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        if stage_id in (PARAMS, INPUT):
            violations.append(_violation(f"{prefix}.id", f"{stage_id!r} is reserved for ${{{stage_id}.name}}; "
                                                         "choose another id"))
    label = f"stage {stage_id!r}" if stage_id else "this stage"

    type_names = ", ".join(_STAGE_TYPE_PREFIX + t.upper() for t in STAGE_TYPES)
    raw_type = raw.get("type")
    if raw_type in (None, "", 0, f"{_STAGE_TYPE_PREFIX}UNSPECIFIED"):
        violations.append(_violation(f"{prefix}.type", f"is required for {label}: one of {type_names}"))
        stage_type = ""
    else:
        stage_type = _enum(raw_type, _STAGE_TYPE_PREFIX, STAGE_TYPES) or ""
        if not stage_type:
            violations.append(_violation(f"{prefix}.type", f"{_describe(raw_type)} is not a stage type; use one of {type_names}"))

    dependencies: list[str] = []
    raw_dependencies = raw.get("dependencies") or []
    if not isinstance(raw_dependencies, (list, tuple)):
        violations.append(_violation(f"{prefix}.dependencies", f"must be a list of stage ids, not {_describe(raw_dependencies)}"))
    else:
        for index, dependency in enumerate(raw_dependencies):
            if not isinstance(dependency, str) or not dependency:
                violations.append(_violation(f"{prefix}.dependencies[{index}]", f"must be a stage id, not {_describe(dependency)}"))
            elif dependency == stage_id:
                violations.append(_violation(
                    f"{prefix}.dependencies",
                    f"stage {stage_id!r} depends on itself (cycle {stage_id} -> {stage_id}); remove {stage_id!r} "
                    "from its dependencies",
                ))
            elif dependency not in dependencies:
                dependencies.append(dependency)

    parameters = raw.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        violations.append(_violation(f"{prefix}.parameters", f"must be an object, not {_describe(parameters)}"))
        parameters = {}

    timeout = _seconds(raw.get("timeout"), f"{prefix}.timeout", violations, "give a positive limit, or leave it unset for none")

    retry = raw.get("retry") or {}
    max_attempts, backoff, initial_delay, max_delay = 1, "fixed", 0.0, 0.0
    if not isinstance(retry, dict):
        violations.append(_violation(f"{prefix}.retry", f"must be an object, not {_describe(retry)}"))
        retry = {}
    for key in retry:
        if key not in _RETRY_FIELDS:
            violations.append(_violation(f"{prefix}.retry.{key}", f"is not a retry field; retry fields: {', '.join(_RETRY_FIELDS)}"))
    raw_attempts = retry.get("max_attempts")
    if raw_attempts not in (None, 0):
        if isinstance(raw_attempts, float) and raw_attempts.is_integer():
            raw_attempts = int(raw_attempts)
        if isinstance(raw_attempts, bool) or not isinstance(raw_attempts, int):
            violations.append(_violation(f"{prefix}.retry.max_attempts", f"must be a whole number, not {_describe(raw_attempts)}"))
        elif raw_attempts < 0:
            violations.append(_violation(
                f"{prefix}.retry.max_attempts",
                f"is {raw_attempts}; give the number of attempts in all (1 = no retry), or leave it unset",
            ))
        else:
            max_attempts = raw_attempts
    raw_backoff = retry.get("backoff")
    if raw_backoff not in (None, "", 0, f"{_BACKOFF_PREFIX}UNSPECIFIED"):
        backoff = _enum(raw_backoff, _BACKOFF_PREFIX, BACKOFF_TYPES) or ""
        if not backoff:
            violations.append(_violation(
                f"{prefix}.retry.backoff",
                f"{_describe(raw_backoff)} is not a backoff; use one of "
                + ", ".join(_BACKOFF_PREFIX + b.upper() for b in BACKOFF_TYPES),
            ))
            backoff = "fixed"
    initial_delay = _seconds(retry.get("initial_delay"), f"{prefix}.retry.initial_delay", violations, "give a delay >= 0")
    max_delay = _seconds(retry.get("max_delay"), f"{prefix}.retry.max_delay", violations, "give a delay >= 0, or 0 for no cap")
    if 0 < max_delay < initial_delay:
        violations.append(_violation(
            f"{prefix}.retry.max_delay",
            f"is {max_delay:g}s, less than initial_delay {initial_delay:g}s; raise it, or leave it unset for no cap",
        ))

    condition = raw.get("condition") or ""
    if condition:
        try:
            _parse_condition(condition, f"{prefix}.condition")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            condition = condition if isinstance(condition, str) else ""

    custom_function = raw.get("custom_function") or ""
    registered = sorted(functions)
    if not isinstance(custom_function, str):
        violations.append(_violation(f"{prefix}.custom_function", f"must be a function name, not {_describe(custom_function)}"))
        custom_function = ""
    elif stage_type == "custom":
        if not custom_function:
            violations.append(_violation(
                f"{prefix}.custom_function",
                f"is required for custom {label}: name a registered function ("
                + (f"registered: {', '.join(registered)})" if registered else "none are registered on this server)"),
            ))
        elif custom_function not in functions:
            violations.append(_violation(
                f"{prefix}.custom_function",
                f"{custom_function!r} is not a registered function; "
                + (f"registered: {', '.join(registered)}" if registered
                   else "no custom functions are registered in the server's configuration"),
            ))
    elif custom_function and stage_type:
        violations.append(_violation(
            f"{prefix}.custom_function",
            f"is only for STAGE_TYPE_CUSTOM stages; {label} is {_STAGE_TYPE_PREFIX}{stage_type.upper()}: remove it",
        ))

    disable_cache = raw.get("disable_cache", False)
    if disable_cache is None:
        disable_cache = False
    if not isinstance(disable_cache, bool):
        violations.append(_violation(f"{prefix}.disable_cache", f"must be true or false, not {_describe(disable_cache)}"))
        disable_cache = False

    return dict(
        id=stage_id, type=stage_type, dependencies=tuple(dependencies), parameters=parameters, timeout_seconds=timeout,
        max_attempts=max_attempts, backoff=backoff, initial_delay=initial_delay, max_delay=max_delay,
        condition=condition if isinstance(condition, str) else "", custom_function=custom_function,
        cache=not disable_cache,
    )


def _cycles(ids: list[str], dependencies: dict[str, tuple[str, ...]], limit: int = 5) -> list[list[str]]:
    """Cycles among the dependency edges (stage -> what it depends on), found in declaration order.

    Each is a path that starts and ends with the same stage, e.g. [a, b, c, a]. Iterative, so a
    long chain cannot overflow the stack.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in ids:
        if root in state:
            continue
        path: list[str] = [root]
        iterators = [iter(dependencies.get(root, ()))]
        state[root] = 1
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            if child == path[-1] or child not in dependencies:
                continue  # self-dependencies and unknown ids are reported on their own
            if state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
                    if len(found) >= limit:
                        return found
            elif child not in state:
                state[child] = 1
                path.append(child)
                iterators.append(iter(dependencies.get(child, ())))
    return found


def _ancestors(order: list[list[str]], dependencies: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for layer in order:
        for stage in layer:
            found: set[str] = set()
            for dependency in dependencies[stage]:
                found.add(dependency)
                found |= result[dependency]
            result[stage] = found
    return result


def parse_stages(stages: list[dict], *, field: str = "pipeline.stages", functions: Collection[str] = ()) -> list[Stage]:
    """Validated stages, in declaration order, from their proto JSON dicts.

    Every problem is INVALID_ARGUMENT with a field path such as
    "pipeline.stages[2].dependencies"; all problems of a kind are reported together.
    `functions` are the custom functions registered on the server.
    """
    if not stages:
        raise InvalidArgument.field(field, "is empty; a pipeline needs at least one stage")
    if not isinstance(stages, (list, tuple)):
        raise InvalidArgument.field(field, f"must be a list of stages, not {_describe(stages)}")

    violations: list[FieldViolation] = []
    fields: list[dict] = []
    for index, raw in enumerate(stages):
        prefix = f"{field}[{index}]"
        if not isinstance(raw, dict):
            violations.append(_violation(prefix, f"must be a stage object, not {_describe(raw)}"))
            fields.append({})
            continue
        fields.append(_stage_fields(raw, prefix, violations, functions))

    first: dict[str, int] = {}
    for index, values in enumerate(fields):
        stage_id = values.get("id")
        if not stage_id:
            continue
        if stage_id in first:
            violations.append(_violation(
                f"{field}[{index}].id",
                f"duplicate stage id {stage_id!r}: stages[{first[stage_id]}] and stages[{index}] both use it; "
                "give each stage its own id",
            ))
        else:
            first[stage_id] = index
    for index, values in enumerate(fields):
        for dependency in values.get("dependencies", ()):
            if dependency not in first:
                violations.append(_violation(
                    f"{field}[{index}].dependencies",
                    f"stage {values['id']!r} depends on {dependency!r}, which is not a stage of this pipeline; "
                    f"stages: {_names(first)}",
                ))
    _raise(violations)

    built = [Stage(**values) for values in fields]
    dependencies = {stage.id: stage.dependencies for stage in built}
    for cycle in _cycles([stage.id for stage in built], dependencies):
        violations.append(_violation(
            f"{field}[{first[cycle[0]]}].dependencies",
            f"dependencies form a cycle: {' -> '.join(cycle)}; remove one of these dependencies",
        ))
    _raise(violations)

    ancestors = _ancestors(execution_order(built), dependencies)
    for index, stage in enumerate(built):
        prefix = f"{field}[{index}]"
        uses: list[tuple[str, str, str]] = []  # (field, stage id, as written)
        for path, text in _walk_strings(stage.parameters, f"{prefix}.parameters"):
            for ref in _refs_in_text(text):
                if ref.stage is None:
                    violations.append(_violation(path, _malformed(ref)))
                elif ref.stage != PARAMS:
                    uses.append((path, ref.stage, ref.text))
        if stage.condition:
            condition = _parse_condition(stage.condition, f"{prefix}.condition")
            for column, ref_stage, path in condition.names:
                uses.append((f"{prefix}.condition", ref_stage, ".".join((ref_stage, *path))))
        for path, ref_stage, shown in uses:
            if ref_stage == INPUT:
                continue  # the execution's input: there from the start
            if ref_stage not in first:
                violations.append(_violation(
                    path, f"{shown} refers to stage {ref_stage!r}, which is not a stage of this pipeline; stages: {_names(first)}",
                ))
            elif ref_stage not in ancestors[stage.id]:
                violations.append(_violation(
                    path,
                    f"{shown} reads stage {ref_stage!r}, which stage {stage.id!r} does not depend on (directly or "
                    f"through its dependencies), so it may not have run yet; add {ref_stage!r} to its dependencies",
                ))
    _raise(violations)
    return built


def execution_order(stages: Sequence[Stage] | Sequence[dict]) -> list[list[str]]:
    """Topological layers: every stage comes after all its dependencies; stages in one layer may run in parallel.

    Each stage is in the layer just after its deepest dependency; within a layer stages keep
    their declaration order.
    """
    ids: list[str] = []
    dependencies: dict[str, tuple[str, ...]] = {}
    for stage in stages:
        stage_id = stage.id if isinstance(stage, Stage) else stage["id"]
        deps = stage.dependencies if isinstance(stage, Stage) else tuple(stage.get("dependencies") or ())
        ids.append(stage_id)
        dependencies[stage_id] = tuple(deps)
    depth: dict[str, int] = {}
    remaining = list(ids)
    while remaining:
        progressed = False
        for stage_id in list(remaining):
            deps = dependencies[stage_id]
            if all(d in depth for d in deps if d in dependencies):
                depth[stage_id] = 1 + max((depth[d] for d in deps if d in dependencies), default=-1)
                remaining.remove(stage_id)
                progressed = True
        if not progressed:
            cycle = _cycles(remaining, {s: dependencies[s] for s in remaining}, limit=1)
            shown = " -> ".join(cycle[0]) if cycle else ", ".join(remaining)
            raise InvalidArgument.field("stages", f"dependencies form a cycle: {shown}")
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for stage_id in ids:
        layers[depth[stage_id]].append(stage_id)
    return layers


def retry_delay(stage: Stage, attempt: int) -> float:
    """Seconds to wait before attempt `attempt` (2, 3, ...); 0 before the first.

    fixed: d; linear: d * (attempt - 1); exponential: d * 2 ** (attempt - 2); each capped at
    max_delay when that is set.
    """
    if attempt <= 1:
        return 0.0
    d = stage.initial_delay
    if stage.backoff == "linear":
        delay = d * (attempt - 1)
    elif stage.backoff == "exponential":
        delay = d * 2.0 ** min(attempt - 2, 1023)  # inf rather than OverflowError for absurd attempts
    else:
        delay = d
    if stage.max_delay > 0:
        delay = min(delay, stage.max_delay)
    return float(delay)


def _canonical(value: Any, path: str) -> Any:
    """A JSON-ready copy whose encoding does not depend on order or on 10 vs 10.0 (Struct numbers are doubles)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(key): _canonical(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise InvalidArgument.field(path, f"a {type(value).__name__} is not a JSON value, so the stage cannot be cached")


def stage_cache_key(stage: Stage, resolved_params: dict, code_version: str) -> str:
    """sha256 (hex) over the stage type, its resolved parameters (canonical JSON), custom function and code version.

    Equal for two runs that would compute the same thing; the stage id, timeout and retry
    policy do not take part.
    """
    payload = {
        "type": stage.type,
        "parameters": _canonical(resolved_params or {}, "parameters"),
        "custom_function": stage.custom_function,
        "code_version": code_version,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- templates --------------------------------------------------------------------------

_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_WORDS = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "list": "a list", "object": "an object",
}


def _typed(value: Any, kind: str) -> tuple[bool, Any]:
    """(whether `value` is of template type `kind`, the value as that type)."""
    if kind == "string":
        return isinstance(value, str), value
    if kind == "integer":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        # Struct and Value hold numbers as doubles: 10.0 from a client's 10 is an integer.
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if kind == "boolean":
        return isinstance(value, bool), value
    if kind == "list":
        return isinstance(value, (list, tuple)), list(value) if isinstance(value, (list, tuple)) else value
    if kind == "object":
        return isinstance(value, dict), value
    return False, value


def parse_template_parameters(parameters: list[dict], field: str = "template.parameters") -> list[dict]:
    """Validated template parameters: {"name", "description", "type", "required"[, "default_value"]}.

    "default_value" is there only when the parameter has a default (a null default is none),
    converted to the type (10.0 for an integer becomes 10). A required parameter with a
    default is fine: the default is used when no value is given. The result may be passed
    back in (it is valid input).
    """
    violations: list[FieldViolation] = []
    result: list[dict] = []
    first: dict[str, int] = {}
    for index, raw in enumerate(parameters or []):
        prefix = f"{field}[{index}]"
        if not isinstance(raw, dict):
            violations.append(_violation(prefix, f"must be a parameter object, not {_describe(raw)}"))
            continue
        for key in raw:
            if key not in _TEMPLATE_PARAMETER_FIELDS:
                violations.append(_violation(
                    f"{prefix}.{key}", f"is not a parameter field; parameter fields: {', '.join(_TEMPLATE_PARAMETER_FIELDS)}",
                ))
        name = raw.get("name")
        if not name:
            violations.append(_violation(f"{prefix}.name", "is required: name the parameter, e.g. \"learning_rate\""))
        elif not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            violations.append(_violation(
                f"{prefix}.name",
                f"{_describe(name)} is not a valid name: use letters, digits and '_', not starting with a digit",
            ))
        elif name in first:
            violations.append(_violation(
                f"{prefix}.name", f"duplicate parameter {name!r}: parameters[{first[name]}] has the same name",
            ))
        else:
            first[name] = index
        kind = raw.get("type") or "string"
        if not isinstance(kind, str) or kind.strip().lower() not in TEMPLATE_TYPES:
            violations.append(_violation(f"{prefix}.type", f"{_describe(kind)} is not a type; use one of {', '.join(TEMPLATE_TYPES)}"))
            kind = None
        else:
            kind = kind.strip().lower()
        default = raw.get("default_value")
        if default is not None and kind is not None:
            ok, default = _typed(default, kind)
            if not ok:
                violations.append(_violation(
                    f"{prefix}.default_value",
                    f"{_describe(raw.get('default_value'))} is {json_kind(raw.get('default_value'))}, but the parameter's "
                    f"type is {kind}: give {_TYPE_WORDS[kind]}",
                ))
        required = raw.get("required", False)
        if required is None:
            required = False
        if not isinstance(required, bool):
            violations.append(_violation(f"{prefix}.required", f"must be true or false, not {_describe(required)}"))
        description = raw.get("description") or ""
        parsed = {"name": name, "description": description, "type": kind, "required": bool(required)}
        if default is not None:
            parsed["default_value"] = default
        result.append(parsed)
    _raise(violations)
    return result


def instantiate_template(stages: list[dict], parameters: list[dict], config: dict, field: str = "config", *,
                         stages_field: str = "template.stages", parameters_field: str = "template.parameters") -> list[dict]:
    """The template's stages with ${params.name} filled from `config` and the parameters' defaults.

    `config` is checked first: names that are not parameters, required parameters without a
    value or default, and values of the wrong type (integers: whole numbers, not true/false;
    numbers: int or float) are INVALID_ARGUMENT, all together, each on `field`.name. A string
    that is exactly ${params.name} becomes the value with its type; inside longer text it is
    formatted as text. References to stage outputs are left for run time. The result is a new
    list (the input is not changed); pass it to parse_stages to validate it as a pipeline.
    """
    declared = parse_template_parameters(parameters, parameters_field)
    by_name = {p["name"]: p for p in declared}
    config = config or {}
    violations: list[FieldViolation] = []
    if not isinstance(config, dict):
        raise InvalidArgument.field(field, f"must be an object of parameter values, not {_describe(config)}")
    for name in config:
        if name not in by_name:
            violations.append(_violation(
                f"{field}.{name}", f"is not a parameter of this template; parameters: {_names(by_name)}",
            ))
    values: dict[str, Any] = {}
    for parameter in declared:
        name, kind = parameter["name"], parameter["type"]
        if name in config and config[name] is not None:
            ok, value = _typed(config[name], kind)
            if not ok:
                violations.append(_violation(
                    f"{field}.{name}",
                    f"{_describe(config[name])} is {json_kind(config[name])}, but {name!r} is of type {kind}: "
                    f"give {_TYPE_WORDS[kind]}",
                ))
                continue
            values[name] = value
        elif "default_value" in parameter:
            values[name] = copy.deepcopy(parameter["default_value"])
        elif parameter["required"]:
            about = f" ({parameter['description']})" if parameter["description"] else ""
            violations.append(_violation(f"{field}.{name}", f"is required: give {_TYPE_WORDS[kind]}{about}"))
    _raise(violations)

    def replace(ref: _Ref, path: str) -> Any:
        if ref.stage != PARAMS:
            return _KEEP  # malformed and stage references: parse_stages and run time deal with them
        name = ref.path[0]
        if name not in by_name:
            violations.append(_violation(
                path, f"{ref.text} is not a parameter of this template; parameters: {_names(by_name)}",
            ))
            return _KEEP
        if name not in values:
            violations.append(_violation(
                f"{field}.{name}", f"has no value and no default, but {path} uses {ref.text}: give {_TYPE_WORDS[by_name[name]['type']]}",
            ))
            return _KEEP
        try:
            return _lookup(values, PARAMS, ref.path, ref.text, path)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            return _KEEP

    result = _substitute(list(stages or []), replace, stages_field)
    _raise(violations)
    return result
