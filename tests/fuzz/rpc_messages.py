"""Hypothesis strategies that build any request message from its descriptor, and that mutate
realistic requests, for the RPC fuzz test (test_rpc_fuzz.py).

Generated messages fill fields recursively with the values that break servers: empty, huge,
unicode and path-traversal strings, resource names (real ones from the test's seeds too),
integers at the extremes of their type, unknown enum numbers, NaN and infinities, Struct
values without a kind, Durations and Timestamps out of their range. Mutated messages start from
a request that works and flip, clear or replace a few of its fields, which reaches the checks
deep inside a handler that a random message never gets past.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf import message_factory
from hypothesis import strategies as st

FD = _descriptor.FieldDescriptor

# Nested messages below this depth are left empty: TrainingRequest -> ModelConfig -> Struct ->
# Value -> ListValue ... is deep enough to reach every validator, and deeper trees only slow
# generation down.
MAX_DEPTH = 4
MAX_ITEMS = 3

# Strings a handler has to survive. No URI here reaches the network (s3://, gs://, http://,
# postgresql://): those depend on the machine's network and credentials, and their own tests
# (moto, PostgreSQL) cover them.
NASTY_STRINGS = (
    "",
    " ",
    "a",
    "-",
    "0",
    "-1",
    "1e309",
    "NaN",
    "None",
    "null",
    "true",
    "projects/x/jobs/y",
    "projects/default",
    "projects/default/datasets/",
    "projects//datasets/x",
    "projects/default/trainingJobs/../../x",
    "projects/other/datasets/x",
    "projects/default/models/m/versions/1",
    "projects/default/pipelines/p/executions/e",
    "../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "file://remote/etc/passwd",
    "/dev/zero",
    "/proc/self/environ",
    "~/model.pkl",
    ".",
    "..",
    "a/../../b",
    "C:\\Windows\\system.ini",
    "\x00",
    "a\x00b",
    "\n",
    "\t\r",
    "\u202e",
    "🙂",
    "名前",
    "ǅ" * 64,
    "${input.x}",
    "${params.",
    "${",
    "'; DROP TABLE datasets; --",
    "%s%n%x",
    "{}",
    "[1, 2",
    "__import__('os').system('true')",
    "a == 1 and",
    "x" * 300,
    "y" * 70_000,
)

FLOAT_EDGES = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e308, 5e-324, 2.0**63)

INT_BOUNDS = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}


def message_class(descriptor: _descriptor.Descriptor) -> type[_message.Message]:
    return message_factory.GetMessageClass(descriptor)


def strings(known: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Nasty strings, the names of real resources (so a request reaches past the lookup),
    and arbitrary unicode."""
    choices = [st.sampled_from(NASTY_STRINGS), st.text(st.characters(codec="utf-8"), max_size=24)]
    if known:
        choices.insert(0, st.sampled_from(sorted(known)))
    return st.one_of(choices)


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Any integer of the type, the edges of the type and of common limits most often."""
    edges = sorted({v for v in (0, 1, -1, 2, 1000, 10_001, 2**31 - 1, 2**31, 2**53, lo, lo + 1, hi - 1, hi)
                    if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def scalar(field: _descriptor.FieldDescriptor, known: Sequence[str] = ()) -> st.SearchStrategy:
    """Values of a non-message field's type (one element of it, if repeated)."""
    kind = field.type
    if kind == FD.TYPE_STRING:
        return strings(known)
    if kind == FD.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.sampled_from([b"a,b\n1,2\n", b"\xff\xfe\x00", b"\n" * 100]))
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind in INT_BOUNDS:
        return _integers(*INT_BOUNDS[kind])
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        width = 64 if kind == FD.TYPE_DOUBLE else 32
        return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(width=width))
    if kind == FD.TYPE_ENUM:
        # proto3 enums are open: a client built from a newer proto sends numbers this server never saw.
        known_numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known_numbers), _integers(-(2**31), 2**31 - 1))
    raise TypeError(f"no strategy for field type {kind} of {field.full_name}")


def _is_map(field: _descriptor.FieldDescriptor) -> bool:
    return field.type == FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def fill_field(draw, message: _message.Message, field: _descriptor.FieldDescriptor, depth: int,
               known: Sequence[str]) -> None:
    """Set `field` of `message` to drawn values (replacing what it held)."""
    message.ClearField(field.name)
    if _is_map(field):
        key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        target = getattr(message, field.name)
        for key in draw(st.lists(scalar(key_field, known), max_size=MAX_ITEMS, unique=True)):
            if value_field.type == FD.TYPE_MESSAGE:
                target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1, known)))
            else:
                target[key] = draw(scalar(value_field, known))
        return
    if field.is_repeated:
        target = getattr(message, field.name)
        if field.type == FD.TYPE_MESSAGE:
            target.extend(draw(st.lists(messages(field.message_type, depth + 1, known), max_size=MAX_ITEMS)))
        else:
            target.extend(draw(st.lists(scalar(field, known), max_size=MAX_ITEMS)))
        return
    if field.type == FD.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(draw(messages(field.message_type, depth + 1, known)))
        return
    setattr(message, field.name, draw(scalar(field, known)))


@st.composite
def messages(draw, descriptor: _descriptor.Descriptor, depth: int = 0, known: Sequence[str] = ()):
    """A `descriptor` message with a drawn subset of its fields set (at most one field per oneof);
    every scalar, enum, repeated, map and nested message field can be reached."""
    message = message_class(descriptor)()
    if depth >= MAX_DEPTH:
        return message
    for field in descriptor.fields:
        if field.containing_oneof is not None:
            continue
        if draw(st.booleans()):
            fill_field(draw, message, field, depth, known)
    for oneof in descriptor.oneofs:
        chosen = draw(st.none() | st.sampled_from(list(oneof.fields)))
        if chosen is not None:
            fill_field(draw, message, chosen, depth, known)
    return message


def _mutate_once(draw, message: _message.Message, known: Sequence[str]) -> None:
    """Walk into `message` along set fields, then clear, replace or twist one field."""
    target, depth = message, 0
    while True:
        field = draw(st.sampled_from(list(target.DESCRIPTOR.fields)))
        if field.type == FD.TYPE_MESSAGE and not _is_map(field) and depth < MAX_DEPTH:
            if field.is_repeated:
                items = getattr(target, field.name)
                if len(items) and draw(st.booleans()):
                    target, depth = items[draw(st.integers(0, len(items) - 1))], depth + 1
                    continue
            elif target.HasField(field.name) and draw(st.booleans()):
                target, depth = getattr(target, field.name), depth + 1
                continue
        break
    action = draw(st.sampled_from(["replace", "clear", "twist"]))
    if action == "clear":
        target.ClearField(field.name)
    elif action == "twist" and field.type == FD.TYPE_STRING and not field.is_repeated:
        # A real value made slightly wrong: the typos and traversals that pass a quick glance.
        value = getattr(target, field.name)
        twist = draw(st.sampled_from(["upper", "truncate", "suffix", "prefix", "double"]))
        value = {"upper": value.upper(), "truncate": value[: len(value) // 2], "suffix": value + "/../x",
                 "prefix": "../" + value, "double": value + value}[twist]
        setattr(target, field.name, value)
    elif action == "twist" and field.is_repeated and not _is_map(field) and len(getattr(target, field.name)):
        items = getattr(target, field.name)
        items.extend([items[0]])  # a duplicate entry
    else:
        fill_field(draw, target, field, depth, known)


@st.composite
def mutated(draw, seeds: Sequence[_message.Message], known: Sequence[str] = ()):
    """A copy of one of `seeds` (requests that work) with one to three fields cleared, replaced or twisted."""
    seed = draw(st.sampled_from(list(seeds)))
    message = type(seed)()
    message.CopyFrom(seed)
    for _ in range(draw(st.integers(1, 3))):
        _mutate_once(draw, message, known)
    return message


def requests(descriptor: _descriptor.Descriptor, seeds: Sequence[_message.Message] = (),
             known: Sequence[str] = ()) -> st.SearchStrategy[_message.Message]:
    """Generated requests, mutated seeds where there are some, and the seeds themselves."""
    generated = messages(descriptor, 0, known)
    if not seeds:
        return generated
    return st.one_of(mutated(seeds, known), generated, st.sampled_from(list(seeds)))


@st.composite
def request_streams(draw, descriptor: _descriptor.Descriptor, seeds: Sequence[Sequence[_message.Message]] = (),
                    known: Sequence[str] = ()):
    """Message sequences for a client-streaming RPC: a working sequence as it is, or with one message
    mutated, dropped, repeated or moved, or cut short; or a few generated messages."""
    if seeds and draw(st.booleans()):
        sequence = [type(m).FromString(m.SerializeToString()) for m in draw(st.sampled_from(list(seeds)))]
        index = draw(st.integers(0, len(sequence) - 1))
        change = draw(st.sampled_from(["keep", "mutate", "drop", "repeat", "move", "cut"]))
        if change == "keep":
            pass
        elif change == "mutate":
            sequence[index] = draw(mutated([sequence[index]], known))
        elif change == "drop":
            del sequence[index]
        elif change == "repeat":
            sequence.insert(index, sequence[index])
        elif change == "move":
            sequence.append(sequence.pop(index))
        else:
            sequence = sequence[:index]
        return sequence
    return draw(st.lists(messages(descriptor, 0, known), max_size=4))
