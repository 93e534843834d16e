"""When a trigger that is not an event is due (CONTRACT.md §7): pure, deterministic times.

In: a ``dsl.ir.Trigger`` of kind ``inactivity`` or ``date``, the customer's profile, their
time zone (``dsl.zones.resolve_zone``), the current time, and what the entity remembers
about it (the last awaited event, the first event, what fired last).
Out: ``next_due`` → a ``Due`` (the time, the ``mark`` to remember once it fired, and the
``trigger.*`` data the journey sees) or None when nothing is to be scheduled; and
``date_value`` / ``DATE_RE`` for the compiler's and the schema's checks.

Rules (docs/rules.md, "Triggers"):

- inactivity: due ``seconds`` after the last awaited event, or after the customer's first
  event when there was none; once per quiet spell (the mark is the spell's start), so it
  fires again only after another such event. ``trigger.last_at`` is that event's time or null.
- every year on a date field (``YYYY-MM-DD`` or ``MM-DD``; a date-time counts by its
  date): the next month and day, at ``at`` local time (default 09:00), strictly after
  now and after the last one that fired; 29 February is 28 February in other years.
- on a date or date-time field, moved by ``seconds``: a date is its local day moved by
  the offset, at ``at`` (default 09:00); a date-time is itself plus the offset (at ``at``
  local time when given). Once per value: the mark is the time itself, so a changed field
  schedules again, the same value never fires twice, and a time already past never fires.

Standard library only, no I/O, no clock: runs inside Temporal's workflow sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from dsl.clock import iso, parse_iso
from dsl.ir import Trigger

DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
MONTH_DAY_RE = re.compile(r"^(?:--)?(\d{2})-(\d{2})$")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
DEFAULT_AT = "09:00"


@dataclass(frozen=True)
class Due:
    at: datetime  # aware, UTC
    mark: str  # remembered once it fired (what must change for it to fire again)
    data: dict  # what the journey sees as trigger.*


def field_value(profile: dict, path: str) -> Any:
    """``profile[a][b]`` for the path ``a.b``; None when any part is missing."""
    value: Any = profile
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def date_value(value: Any, zone: tzinfo) -> tuple[str, Any] | None:
    """What a date field holds: ("date", date), ("month_day", (month, day)), ("datetime",
    aware datetime), or None when it is none of them."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    m = DATE_RE.match(text)
    if m:
        try:
            return "date", date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    m = MONTH_DAY_RE.match(text)
    if m:
        month, day = int(m[1]), int(m[2])
        try:
            date(2000, month, day)  # a leap year: 02-29 is a valid birthday
        except ValueError:
            return None
        return "month_day", (month, day)
    if len(text) < 11 or text[10] not in "Tt ":
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # a wall-clock time is the customer's
    return "datetime", moment


def _at(text: str) -> time:
    m = TIME_RE.match(text or DEFAULT_AT)
    return time(int(m[1]), int(m[2])) if m else time(9, 0)


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, at.hour, at.minute, tzinfo=zone)


def _on_day(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:  # 29 February in a year that has none
        return date(year, month, 28)


def next_due(
    trigger: Trigger,
    profile: dict,
    zone: tzinfo,
    now: datetime,
    *,
    last_at: str | None = None,
    first_at: str | None = None,
    fired: str | None = None,
) -> Due | None:
    """When ``trigger`` is next due for this customer; None: not scheduled."""
    if trigger.kind == "inactivity":
        base = last_at or first_at
        if not base or fired == base:
            return None
        return Due(parse_iso(base) + timedelta(seconds=trigger.seconds), base, {"last_at": last_at})
    if trigger.kind != "date":
        return None
    found = date_value(field_value(profile, trigger.path), zone)
    if found is None:
        return None
    kind, value = found
    if trigger.yearly:
        if kind == "month_day":
            month, day = value
        elif kind == "date":
            month, day = value.month, value.day
        else:
            local = value.astimezone(zone)
            month, day = local.month, local.day
        at = _at(trigger.at)
        after = now if fired is None else max(now, parse_iso(fired))
        local_now = now.astimezone(zone)
        for year in range(local_now.year - 1, local_now.year + 3):
            moment = _local(_on_day(year, month, day), at, zone)
            moment = moment + timedelta(seconds=trigger.seconds)
            if moment > after:
                return _date_due(moment, trigger, value)
        return None
    if kind == "month_day":
        return None  # a month and day is no single time: only `every year on` takes one
    offset = timedelta(seconds=trigger.seconds)
    if kind == "date":
        moved = datetime(value.year, value.month, value.day, tzinfo=zone) + offset
        moment = _local(moved.date(), _at(trigger.at), zone)
    else:
        moment = value + offset
        if trigger.at:
            moment = _local(moment.astimezone(zone).date(), _at(trigger.at), zone)
    if moment <= now or fired == iso(moment):
        return None
    return _date_due(moment, trigger, value)


def _date_due(moment: datetime, trigger: Trigger, value: Any) -> Due:
    when = iso(moment)
    return Due(parse_iso(when), when, {"at": when, "field": trigger.path})


def describe_due(trigger: Trigger, due: datetime, zone: tzinfo, now: datetime) -> str:
    """``birthday: 20 Jan 10:00 Europe/Berlin`` (the year when it is not this year's)."""
    local = due.astimezone(zone)
    name = trigger.path.rsplit(".", 1)[-1] if trigger.kind == "date" else str(trigger)
    year = "" if local.year == now.astimezone(zone).year else f" {local.year}"
    zone_name = getattr(zone, "key", None) or str(zone)
    return f"{name}: {local.day} {local:%b}{year} {local:%H:%M} {zone_name}"
