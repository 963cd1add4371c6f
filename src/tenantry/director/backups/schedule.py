"""Five-field cron schedules (minute hour day-of-month month day-of-week), evaluated in UTC.

Fields take ``*``, numbers, ``a-b`` ranges, ``*/n`` or ``a-b/n`` steps and comma lists; day of
week is 0-7 (0 and 7 are Sunday).  As in cron, when both day fields are restricted a day
matches either.  :meth:`Schedule.due` tells whether a minute boundary passed between two times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError):
    pass


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_s = part.partition("/")
        try:
            step = int(step_s) if step_s else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(base)
                if step_s:
                    end = high
        except ValueError:
            raise ScheduleError(f"{_NAMES[index]} field {text!r} is not a number, range or step") from None
        if step < 1 or not low <= start <= end <= high:
            raise ScheduleError(f"{_NAMES[index]} field {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Schedule:
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError(f"schedule {text!r}: expected 5 fields (minute hour day month weekday)")
        f = [_field(p, i) for i, p in enumerate(parts)]
        return cls(f[0], f[1], f[2], f[3], f[4], parts[2] == "*", parts[4] == "*")

    def matches(self, when: dt.datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def due(self, after: float, until: float) -> bool:
        """A matching minute starts in (after, until]."""
        start = dt.datetime.fromtimestamp(after, dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        end = dt.datetime.fromtimestamp(until, dt.UTC)
        steps = 0
        while start <= end and steps < 60 * 24 * 3:
            if self.matches(start):
                return True
            start += dt.timedelta(minutes=1)
            steps += 1
        return False

    def next_after(self, when: float) -> float | None:
        start = dt.datetime.fromtimestamp(when, dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for _ in range(60 * 24 * 366):
            if self.matches(start):
                return start.timestamp()
            start += dt.timedelta(minutes=1)
        return None
