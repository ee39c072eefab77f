"""How commands print: `--output json` (the proto's JSON form, one document per command, or one
object per line for streams) or text tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

from forge.training.v1 import common_pb2


def to_json(value: Any) -> Any:
    """Messages (also inside lists and dicts) as their JSON form; everything else unchanged."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value)
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def print_json(value: Any, *, out: TextIO | None = None, lines: bool = False) -> None:
    """One indented JSON document, or with `lines` one compact line (for streams: JSON Lines)."""
    out = out or sys.stdout
    if lines:
        out.write(json.dumps(to_json(value), separators=(",", ":")) + "\n")
        out.flush()
    else:
        out.write(json.dumps(to_json(value), indent=2) + "\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned text columns; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and any(row[i] != "-" for row in cells[1:])
               for i in range(len(headers))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[i].rjust(widths[i]) if numeric[i] else row[i].ljust(widths[i]) for i in range(len(row))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value)
    return str(value)


def _is_number(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def number(value: float | None) -> str:
    """Four significant digits, enough to compare epochs without a wall of digits."""
    if value is None:
        return "-"
    return f"{value:.4g}"


def enum_name(enum: Any, value: int) -> str:
    """An enum value's name without its type's prefix: COMPLETED for JOB_STATE_COMPLETED."""
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    zero = enum.DESCRIPTOR.values_by_number[0].name  # JOB_STATE_UNSPECIFIED: the prefix is its stem
    prefix = zero[: -len("UNSPECIFIED")] if zero.endswith("_UNSPECIFIED") else ""
    return name.removeprefix(prefix)


def state(value: int) -> str:
    """A JobState's name: COMPLETED for JOB_STATE_COMPLETED."""
    return enum_name(common_pb2.JobState, value)


def timestamp(value: Any) -> str:
    """A google.protobuf.Timestamp in UTC to the second, or "-" when unset."""
    if not value.seconds and not value.nanos:
        return "-"
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")


def size(count: int) -> str:
    """Bytes for people: 512 B, 3.4 KiB, 12.0 MiB."""
    amount = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} B"


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key: value` lines, aligned, skipping empty values."""
    kept = [(key, _cell(value)) for key, value in pairs if value not in (None, "", [], {})]
    width = max((len(key) for key, _ in kept), default=0)
    return "\n".join(f"{key + ':':<{width + 1}} {value}" for key, value in kept)
