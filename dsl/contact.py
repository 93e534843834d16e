"""The contact policy's small texts (CONTRACT.md §6), parsed once, for the compiler.

In: the text of ``settings.quiet_hours`` (``"21:00-08:00"``), ``settings.frequency_cap``
(``"3 per 7 days"``), a time of day (``wait until 09:30``) or a time-zone name.
Out: minutes since local midnight, ``(count, seconds)``, or ``ContactTextError`` with the
offset of the bad part and a hint. The workflow never parses these: the compiler puts the
numbers into the plan's settings (``dsl.contract.CustomerSettings``) and steps.

Standard library only (zoneinfo, with the pinned ``tzdata`` package as its data where the
system has none).
"""

from __future__ import annotations

import re

from dsl.clock import UNITS
from dsl.errors import did_you_mean
from dsl.zones import zone_named

MAX_CAP_COUNT = 100  # the entity keeps this many send times at most (workflows/state.py)
MAX_CAP_SECONDS = 90 * 86400  # a trailing window of at most 90 days
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_CAP = re.compile(r"\s*(-?\d+)\s+per\s+(?:(\d+)\s*)?([A-Za-z]+)\s*")


class ContactTextError(ValueError):
    def __init__(self, message: str, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


def parse_time_of_day(text: str, offset: int = 0) -> int:
    """``"08:30"`` → 510 (minutes after local midnight)."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise ContactTextError(
            f"'{text.strip()}' is not a time of day", offset, "write HH:MM, e.g. 08:00 or 21:30"
        )
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours > 23 or minutes > 59:
        raise ContactTextError(
            f"'{text.strip()}' is not a time of day: hours run 00-23, minutes 00-59",
            offset,
            "write HH:MM, e.g. 08:00 or 21:30",
        )
    return hours * 60 + minutes


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """``"21:00-08:00"`` → (1260, 480): start (inside) and end (outside), local time."""
    start, dash, end = text.partition("-")
    if not dash:
        raise ContactTextError(
            f"quiet hours '{text}' need a start and an end",
            0,
            'write "START-END" in local time, e.g. "21:00-08:00"',
        )
    lead = len(start) - len(start.lstrip())
    first = parse_time_of_day(start, lead)
    second = parse_time_of_day(end, len(start) + 1 + len(end) - len(end.lstrip()))
    if first == second:
        raise ContactTextError(
            "quiet hours cannot start and end at the same time",
            0,
            "leave quiet_hours out for none",
        )
    return first, second


def parse_frequency_cap(text: str) -> tuple[int, int]:
    """``"3 per 7 days"`` → (3, 604800): at most 3 marketing emails in any 7 days."""
    m = _CAP.fullmatch(text)
    hint = 'write "N per DURATION", e.g. "3 per 7 days" or "1 per day"'
    if m is None:
        raise ContactTextError(f"frequency cap '{text}' is not 'N per DURATION'", 0, hint)
    count = int(m.group(1))
    if count < 1:
        raise ContactTextError(
            "a frequency cap must allow at least 1 email",
            m.start(1),
            "to send no marketing email, leave the journeys out; for no cap, leave frequency_cap out",
        )
    if count > MAX_CAP_COUNT:
        raise ContactTextError(f"a frequency cap counts at most {MAX_CAP_COUNT} emails", m.start(1))
    unit = m.group(3).lower()
    factor = UNITS.get(unit)
    if factor is None:
        raise ContactTextError(
            f"unknown time unit '{m.group(3)}'",
            m.start(3),
            did_you_mean(unit, UNITS) or "units: minutes, hours, days, weeks",
        )
    seconds = int(m.group(2) or 1) * factor
    if not 0 < seconds <= MAX_CAP_SECONDS:
        raise ContactTextError(
            "a frequency cap's window must be longer than zero and at most 90 days",
            m.start(2) if m.group(2) else m.start(3),
        )
    return count, seconds


def zone_ok(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine (or tzdata) knows."""
    return zone_named(name) is not None
