"""Pipeline schedules: five-field cron expressions in a time zone, or fixed intervals.

Cron fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec)
and day of week (0-7 or sun-sat, 0 and 7 both Sunday), each "*", a value, a range "a-b",
a list "a,b", or a step "*/n" / "a-b/n". As in classic cron, when both day fields are
restricted a day matches either of them. Times are read in the schedule's IANA time zone,
so "0 3 * * *" in Europe/Berlin is 03:00 Berlin time in summer and in winter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import InvalidArgument

_NAMES = {
    3: {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                    "dec"), start=1)},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
# The search for the next run gives up after this long (e.g. "0 0 30 2 *" never fires).
_HORIZON = timedelta(days=366 * 5)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches_day(self, moment: datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7
        if self.any_day or self.any_weekday:
            return moment.day in self.days and weekday in self.weekdays
        return moment.day in self.days or weekday in self.weekdays


def parse_cron(expression: str, field: str = "schedule.cron") -> Cron:
    parts = expression.split()
    if len(parts) != 5:
        raise InvalidArgument.field(field, f"{expression!r} has {len(parts)} fields; a cron expression has five: "
                                           "minute hour day-of-month month day-of-week, e.g. '0 3 * * 1-5'")
    sets = [_parse_field(p, i, field) for i, p in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]), weekdays,
                any_day=parts[2] == "*", any_weekday=parts[4] == "*")


def _parse_field(text: str, index: int, field: str) -> set[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = _value(a, index), _value(b, index)
            else:
                start = end = _value(base, index)
                if step_text:
                    end = high
        except ValueError:
            raise InvalidArgument.field(field, f"{item!r} is not a valid {_FIELD_NAMES[index]} field") from None
        if step < 1 or not (low <= start <= end <= high):
            raise InvalidArgument.field(field, f"{item!r}: {_FIELD_NAMES[index]} values run from {low} to {high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    return names[text] if text in names else int(text)


def zone(name: str, field: str = "schedule.timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument.field(field, f"unknown time zone {name!r}: use an IANA name such as "
                                           "'Europe/Berlin' or 'UTC'") from None


def next_cron_time(cron: Cron, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first minute after `after` (UTC) that the expression matches in `tz`, in UTC."""
    local = after.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = local + _HORIZON
    while local < end:
        if local.month not in cron.months:
            local = (local.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        if not cron.matches_day(local):
            local = local.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if local.hour not in cron.hours:
            local = local.replace(minute=0) + timedelta(hours=1)
            continue
        if local.minute in cron.minutes:
            # Wall-clock arithmetic can land in a gap of a DST change: normalize through UTC.
            return local.replace(tzinfo=tz).astimezone(timezone.utc)
        local += timedelta(minutes=1)
    return None


def next_run(schedule: dict, after: datetime) -> datetime | None:
    """When a stored schedule ({"cron" | "interval_seconds", "timezone", "paused"}) fires next
    after `after`; None when paused or never."""
    if not schedule or schedule.get("paused"):
        return None
    if schedule.get("cron"):
        return next_cron_time(parse_cron(schedule["cron"]), zone(schedule.get("timezone", "")), after)
    interval = float(schedule.get("interval_seconds") or 0)
    return after + timedelta(seconds=interval) if interval > 0 else None


def check_schedule(schedule: dict, field: str = "pipeline.schedule") -> None:
    if not schedule:
        return
    cron, interval = schedule.get("cron", ""), float(schedule.get("interval_seconds") or 0)
    if bool(cron) == bool(interval):
        raise InvalidArgument.field(field, "give exactly one of cron and interval")
    if interval and interval < 1:
        raise InvalidArgument.field(f"{field}.interval", "must be at least 1 second")
    if cron:
        parse_cron(cron, f"{field}.cron")
    zone(schedule.get("timezone", ""), f"{field}.timezone")
