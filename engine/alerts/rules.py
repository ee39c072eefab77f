"""Alert rules (AlertRule in the proto), read from a request's JSON form and checked.

A rule: {"name", "on_states": [engine state names], "metric": {"metric", "above" | "below"},
"webhook_url", "webhook_secret"}. It needs on_states, a metric, or both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from engine import names
from engine.errors import InvalidArgument, json_kind
from engine.jobs import states

RULE_FIELDS = ("name", "on_states", "metric", "webhook_url", "webhook_secret", "webhook_secret_set")
STATES = (states.PENDING, states.RUNNING, states.PAUSING, states.PAUSED, states.CANCELLING, states.COMPLETED,
          states.FAILED, states.CANCELLED)
MAX_RULES = 20


def read_rules(raw: Any, field: str, *, metrics: bool) -> list[dict[str, Any]]:
    """The rules of `raw` (a list of rule objects, keys snake_case or camelCase), checked;
    INVALID_ARGUMENT names the field, e.g. alerts[1].webhook_url. `metrics`: whether the
    resource reports metrics a rule may watch (not pipelines)."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise InvalidArgument.field(field, f"must be a list of alert rules, got {json_kind(raw)}")
    if len(raw) > MAX_RULES:
        raise InvalidArgument.field(field, f"at most {MAX_RULES} alert rules, got {len(raw)}")
    rules, seen = [], set()
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidArgument.field(where, f"must be an object, got {json_kind(item)}")
        rule = {_snake(k): v for k, v in item.items()}
        unknown = [k for k in rule if k not in RULE_FIELDS]
        if unknown:
            raise InvalidArgument.field(f"{where}.{unknown[0]}", f"is not a field of an alert rule: use one of "
                                                                 f"{', '.join(RULE_FIELDS[:5])}")
        name = names.validate_id(str(rule.get("name") or ""), f"{where}.name")
        if name in seen:
            raise InvalidArgument.field(f"{where}.name", f"{name!r} is the name of an earlier rule: give each its own")
        seen.add(name)
        on_states = [_state(s, f"{where}.on_states[{i}]") for i, s in enumerate(rule.get("on_states") or [])]
        metric = _metric(rule.get("metric"), f"{where}.metric") if rule.get("metric") else None
        if metric and not metrics:
            raise InvalidArgument.field(f"{where}.metric", "pipelines report no metrics to watch: use on_states")
        if not on_states and not metric:
            raise InvalidArgument.field(where, "fires on nothing: give on_states, a metric, or both")
        url = str(rule.get("webhook_url") or "").strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidArgument.field(f"{where}.webhook_url", f"{url!r} is not an http:// or https:// URL")
        secret = rule.get("webhook_secret") or ""
        if not isinstance(secret, str):
            raise InvalidArgument.field(f"{where}.webhook_secret", f"must be text, got {json_kind(secret)}")
        if secret and not url:
            raise InvalidArgument.field(f"{where}.webhook_secret", "signs webhook calls: set webhook_url too")
        rules.append({"name": name, "on_states": on_states, "metric": metric, "webhook_url": url,
                      "webhook_secret": secret})
    return rules


def public(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules as the API shows them: secrets left out, only whether one is set."""
    return [{**{k: v for k, v in r.items() if k != "webhook_secret"}, "webhook_secret_set": bool(r.get("webhook_secret"))}
            for r in rules]


def crossed(condition: dict[str, Any], value: float) -> bool:
    return value > condition["above"] if "above" in condition else value < condition["below"]


def _snake(key: Any) -> str:
    text = str(key)
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in text).lstrip("_")


def _state(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(STATES):
        return STATES[value - 1]  # the proto's JobState numbering
    short = str(value).strip().upper().removeprefix("JOB_STATE_") if isinstance(value, str) else ""
    if short not in STATES:
        raise InvalidArgument.field(where, f"{value!r} is not a JobState: use one of {', '.join(STATES)}")
    return short


def _metric(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument.field(where, f"must be an object, got {json_kind(value)}")
    condition = {_snake(k): v for k, v in value.items()}
    unknown = [k for k in condition if k not in ("metric", "above", "below")]
    if unknown:
        raise InvalidArgument.field(f"{where}.{unknown[0]}", "is not a field of a metric condition: use metric, "
                                                             "above or below")
    metric = condition.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidArgument.field(f"{where}.metric", "is required: e.g. 'val_loss' or 'accuracy'", "REQUIRED")
    lines = {k: condition[k] for k in ("above", "below") if condition.get(k) is not None}
    if len(lines) != 1:
        raise InvalidArgument.field(where, "give exactly one of above and below")
    (side, line), = lines.items()
    if isinstance(line, bool) or not isinstance(line, (int, float)) or not math.isfinite(line):
        raise InvalidArgument.field(f"{where}.{side}", f"must be a number, got {line!r}")
    return {"metric": metric.strip(), side: float(line)}
