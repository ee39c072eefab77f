"""Alert rules (AlertRule in the proto), read from a request's JSON form and checked.

A rule: {"name", "on_states": [engine state names], "metric": {"metric", "above" | "below"},
"webhook_url", "webhook_secret"}. It needs on_states, a metric, or both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
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
    rules = []
    for where, rule, name in named_entries(raw, field, "alert rule", RULE_FIELDS, MAX_RULES):
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


def named_entries(raw: Any, field: str, noun: str, fields: tuple[str, ...],
                  limit: int) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(where, entry with snake_case keys, its name) of each object of the list `raw` (None: none),
    after the checks every list of named settings objects needs: a list of at most `limit`
    objects, of the `fields` only, each with a valid name of its own. INVALID_ARGUMENT names the
    field, e.g. pipeline.triggers[2].name."""
    if raw is None:
        return
    if not isinstance(raw, (list, tuple)):
        raise InvalidArgument.field(field, f"must be a list of {noun}s, got {json_kind(raw)}")
    if len(raw) > limit:
        raise InvalidArgument.field(field, f"at most {limit} {noun}s, got {len(raw)}")
    seen = set()
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidArgument.field(where, f"must be an object, got {json_kind(item)}")
        entry = {names.snake_case(k): v for k, v in item.items()}
        unknown = [k for k in entry if k not in fields]
        if unknown:
            raise InvalidArgument.field(f"{where}.{unknown[0]}", f"is not a field of a {noun}: use one of "
                                                                 f"{', '.join(f for f in fields if not f.endswith('_set'))}")
        name = names.validate_id(str(entry.get("name") or ""), f"{where}.name")
        if name in seen:
            raise InvalidArgument.field(f"{where}.name", f"{name!r} is the name of an earlier {noun}: give each "
                                                         "its own")
        seen.add(name)
        yield where, entry, name


# The secrets settings carry (alert rules' webhook secrets, webhook triggers' secrets), and the
# key that says whether one is set in what the API shows.
_SECRET_KEYS = {"webhook_secret": "webhook_secret_set", "webhookSecret": "webhookSecretSet", "secret": "secret_set"}


def without_secrets(value: Any) -> Any:
    """`value` (a request, pipeline stages or triggers, event data: any JSON) with every secret
    taken out, however deep (a pipeline's training stage carries a whole request), and only
    whether one was set left: what the API may show."""
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {}
    for key, item in value.items():
        if key in _SECRET_KEYS:
            out[_SECRET_KEYS[key]] = bool(item)
        else:
            out[key] = without_secrets(item)
    return out


def crossed(condition: dict[str, Any], value: float) -> bool:
    return value > condition["above"] if "above" in condition else value < condition["below"]


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
    condition = {names.snake_case(k): v for k, v in value.items()}
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
