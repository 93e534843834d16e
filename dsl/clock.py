"""Durations and ISO 8601 times, defined once for the rules, the workflows and the tools.

In: duration units and amounts, ISO 8601 text, simulation offsets (``+2d``, ``+1d6h``).
Out: ``UNITS`` (every unit word a rule may use, in seconds), ``SHORT_UNITS``,
``parse_iso`` (``Z`` or an offset; a time without a zone is UTC; ``ValueError`` if it is
not ISO 8601), ``iso`` (UTC to the second, ``…Z``), ``parse_offset``, and the two ways a
duration is printed (``short_duration``: ``2d``; ``human_duration``: ``2 days``).

Standard library only, no I/O: it runs inside Temporal's workflow sandbox.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

SHORT_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_LONG = {"week": "w", "day": "d", "hour": "h", "minute": "m", "second": "s"}
UNITS = dict(SHORT_UNITS)
for _word, _short in _LONG.items():
    UNITS[_word] = UNITS[_word + "s"] = SHORT_UNITS[_short]

OFFSET_RE = re.compile(r"^\+((?:\d+[wdhms])+)$")
_OFFSET_PART_RE = re.compile(r"(\d+)([wdhms])")


def parse_iso(text: str) -> datetime:
    """An aware datetime from ISO 8601 text (``Z`` accepted; no zone means UTC)."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(dt: datetime) -> str:
    """``2030-01-01T00:00:00Z`` (UTC, to the second)."""
    return (
        dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if dt.tzinfo
        else dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def parse_offset(text: str) -> timedelta | None:
    """``+1d6h`` as a timedelta; None when ``text`` is not an offset."""
    m = OFFSET_RE.match(text.strip())
    if not m:
        return None
    parts = _OFFSET_PART_RE.findall(m.group(1))
    return timedelta(seconds=sum(int(n) * SHORT_UNITS[u] for n, u in parts))


def short_duration(seconds: int) -> str:
    """``2d``, ``36h``, ``90s``: the largest unit (down to minutes) that divides evenly."""
    for unit in ("w", "d", "h", "m"):
        if seconds % SHORT_UNITS[unit] == 0:
            return f"{seconds // SHORT_UNITS[unit]}{unit}"
    return f"{seconds}s"


def human_duration(seconds: int) -> str:
    """``2 days``, ``1 week``, ``36 hours``: the largest unit that divides evenly."""
    for word, unit in _LONG.items():
        size = SHORT_UNITS[unit]
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {word}{'s' if n != 1 else ''}"
    return "0 seconds"
