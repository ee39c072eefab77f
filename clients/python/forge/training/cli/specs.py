"""Spec files: YAML or JSON in the proto's JSON form of a message (TrainingRequest, Pipeline,
TuningSpec, ValidationRules), read into that message. A mistake is one line naming the file, the
field's path and the fix, e.g. `job.yaml: trainingConfig.epochz: no such field in TrainingConfig
(did you mean epochs?)`."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from forge.training.cli.exit_codes import CommandError
# The SDK's own reading of a spec: short enum names ("classification"), camelCase or snake_case.
from forge.training.client import _normalize, _short_enum

M = TypeVar("M", bound=Message)

# Well-known types whose JSON form is a string or any value, not an object of their fields:
# ParseDict checks them as a whole.
_OPAQUE = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
           "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
           "google.protobuf.Any"}


def read_document(path: str) -> Any:
    """The data in a YAML or JSON file (by extension; YAML otherwise, which JSON also is)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read it ({exc})") from None
    if file.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    import yaml  # only commands that read a spec pay for it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise CommandError(f"{where}: not valid YAML: {problem}") from None


def load(path: str, message_type: type[M]) -> M:
    """A message of `message_type` from a YAML or JSON file in its JSON form."""
    data = read_document(path)
    return parse(data, message_type, source=path)


def parse(data: Any, message_type: type[M], *, source: str) -> M:
    """A message from data in its JSON form (camelCase or snake_case field names; enum values
    in full or short), or CommandError naming `source`, the field's path and what is wrong."""
    descriptor = message_type.DESCRIPTOR
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise CommandError(f"{source}: expected a {descriptor.name} object (field: value pairs), got {kind}")
    problem = _first_problem(data, descriptor, "")
    if problem:
        raise CommandError(f"{source}: {problem}")
    message = message_type()
    try:
        json_format.ParseDict(_normalize(data, descriptor), message)
    except json_format.ParseError as exc:  # not expected after the checks above; still one line
        raise CommandError(f"{source}: {_plain(str(exc))}") from None
    return message


def _first_problem(data: Mapping[str, Any], descriptor: Descriptor, path: str) -> str:
    """The first wrong field of `data` as "path: what is wrong", or ""."""
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key) or next(
            (f for f in descriptor.fields if f.json_name == key), None)
        where = f"{path}.{key}" if path else str(key)
        if field is None:
            return f"{where}: no such field in {descriptor.name}{_suggestion(str(key), descriptor)}"
        if value is None:
            continue  # JSON null: the field's default, as ParseDict reads it
        problem = _field_problem(field, value, where)
        if problem:
            return problem
    return ""


def _field_problem(field: FieldDescriptor, value: Any, where: str) -> str:
    container = field.containing_type
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            return f"{where}: expected a map (key: value pairs), got {_kind(value)}"
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            probe = {field.json_name: {key: item}}
            problem = _value_problem(value_field, item, f"{where}.{key}", container, probe)
            if problem:
                return problem
        return ""
    if field.is_repeated:
        if not isinstance(value, list):
            return f"{where}: expected a list, got {_kind(value)}"
        for index, item in enumerate(value):
            problem = _value_problem(field, item, f"{where}[{index}]", container, {field.json_name: [item]})
            if problem:
                return problem
        return ""
    return _value_problem(field, value, where, container, {field.json_name: value})


def _value_problem(field: FieldDescriptor, value: Any, where: str, container: Descriptor,
                   probe: dict[str, Any]) -> str:
    """What is wrong with one value of `field` (one element of a list or map), or "".
    `probe` is that value alone in a `container` message's JSON form."""
    message = field.message_type
    if message is not None and message.full_name not in _OPAQUE:
        if not isinstance(value, Mapping):
            return f"{where}: expected a {message.name} object (field: value pairs), got {_kind(value)}"
        return _first_problem(value, message, where)
    if field.enum_type is not None:
        enum = field.enum_type
        named = _short_enum(field, value)
        if isinstance(value, bool) or not (
                (isinstance(named, str) and named in enum.values_by_name)
                or (isinstance(named, int) and named in enum.values_by_number)):
            zero = enum.values_by_number[0].name
            prefix = zero[: -len("UNSPECIFIED")] if zero.endswith("_UNSPECIFIED") else ""
            valid = [v.name.removeprefix(prefix).lower() for v in enum.values if v.number != 0]
            return f"{where}: {value!r} is not a {enum.name}; use one of: {', '.join(valid)}"
        return ""
    if message is not None and message.full_name == "google.protobuf.Struct" and not isinstance(value, Mapping):
        return f"{where}: expected an object (key: value pairs), got {_kind(value)}"
    if message is not None and message.full_name == "google.protobuf.ListValue" and not isinstance(value, list):
        return f"{where}: expected a list, got {_kind(value)}"
    # Scalars and well-known types: exactly what ParseDict accepts, tried on this value alone.
    try:
        json_format.ParseDict(probe, message_factory.GetMessageClass(container)())
    except json_format.ParseError as exc:
        if message is not None:  # a duration or timestamp: ParseDict says what is wrong with the text
            return f"{where}: {_plain(str(exc))} (expected {_expected(field)})"
        hint = "; put it in quotes" if field.type == FieldDescriptor.TYPE_STRING else ""
        return f"{where}: {value!r} is not {_expected(field)}{hint}"
    return ""


def _expected(field: FieldDescriptor) -> str:
    message = field.message_type
    if message is not None:
        return {"google.protobuf.Duration": 'a duration such as "30s" or "1.5s"',
                "google.protobuf.Timestamp": 'an RFC 3339 time such as "2025-01-31T12:00:00Z"'}.get(
            message.full_name, "a value")
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true or false"
    if field.type == FieldDescriptor.TYPE_STRING:
        return "text"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return "base64 text"
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return "a number"
    return "an integer"


def _plain(message: str) -> str:
    """ParseDict's message without its nesting ("Failed to parse x field: ...") and its
    trailing location, which our path already says."""
    message = " ".join(message.split())
    while True:
        stripped = re.sub(r"^Failed to parse \S+ field: ", "", message)
        if stripped == message:
            break
        message = stripped
    message = re.sub(r"\s+at [\w.\[\]\"]+\.*$", "", message)
    return message.rstrip(".") or "invalid value"


def _suggestion(key: str, descriptor: Descriptor) -> str:
    names = [f.json_name for f in descriptor.fields]
    close = difflib.get_close_matches(key, names + [f.name for f in descriptor.fields], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f"; its fields: {', '.join(names)}"


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value!r}"
    return f"{type(value).__name__} {value!r}"
