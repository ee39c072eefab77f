"""Cron and interval schedules, in time zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.errors import InvalidArgument
from engine.pipelines.schedule import check_schedule, next_cron_time, next_run, parse_cron, zone

UTC = timezone.utc


def _next(expr: str, after: datetime, tz: str = "UTC") -> datetime:
    return next_cron_time(parse_cron(expr), zone(tz), after)


def test_cron_fields_steps_ranges_and_names():
    start = datetime(2026, 11, 27, 9, 31, tzinfo=UTC)  # a Friday
    assert _next("*/15 * * * *", start) == datetime(2026, 11, 27, 9, 45, tzinfo=UTC)
    assert _next("0 3 * * *", start) == datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    assert _next("0 9 * * mon-fri", start) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # skips the weekend
    assert _next("30 6 1 jan *", start) == datetime(2027, 1, 1, 6, 30, tzinfo=UTC)
    assert _next("0 0 29 2 *", start) == datetime(2028, 2, 29, 0, 0, tzinfo=UTC)  # the next leap day
    assert _next("0 12 * * 0", start) == _next("0 12 * * 7", start) == datetime(2026, 11, 29, 12, tzinfo=UTC)
    # Both day fields restricted: either matches (classic cron).
    assert _next("0 0 1 * 5", start) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def test_cron_follows_the_time_zone_across_daylight_saving():
    winter = _next("0 3 * * *", datetime(2026, 12, 1, tzinfo=UTC), "Europe/Berlin")
    summer = _next("0 3 * * *", datetime(2026, 7, 1, tzinfo=UTC), "Europe/Berlin")
    assert winter.hour == 2 and summer.hour == 1  # 03:00 Berlin is 02:00 UTC in winter, 01:00 in summer


def test_intervals_and_pauses():
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert next_run({"interval_seconds": 90}, now) == now + timedelta(seconds=90)
    assert next_run({"interval_seconds": 90, "paused": True}, now) is None
    assert next_run({"cron": "0 0 30 2 *"}, now) is None  # never fires


@pytest.mark.parametrize("schedule, field", [
    ({"cron": "* * *"}, "pipeline.schedule.cron"),
    ({"cron": "61 * * * *"}, "pipeline.schedule.cron"),
    ({"cron": "*/0 * * * *"}, "pipeline.schedule.cron"),
    ({"cron": "0 0 * foo *"}, "pipeline.schedule.cron"),
    ({"cron": "0 0 * * *", "interval_seconds": 60}, "pipeline.schedule"),
    ({"interval_seconds": 0.5}, "pipeline.schedule.interval"),
    ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, "pipeline.schedule.timezone"),
])
def test_bad_schedules_name_the_field(schedule, field):
    with pytest.raises(InvalidArgument) as err:
        check_schedule(schedule)
    assert err.value.violations[0].field == field
