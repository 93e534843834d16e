"""dsl.clock: the one table of duration units and the one ISO 8601 parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dsl.clock import UNITS, human_duration, iso, parse_iso, parse_offset, short_duration


def test_every_unit_a_rule_may_use():
    assert UNITS == {
        "s": 1, "second": 1, "seconds": 1, "m": 60, "minute": 60, "minutes": 60,
        "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400,
        "w": 604800, "week": 604800, "weeks": 604800,
    }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["2030-01-02T03:04:05Z", "2030-01-02T03:04:05z", "2030-01-02T03:04:05+00:00",
     "2030-01-02T04:04:05+01:00", "2030-01-02T03:04:05", " 2030-01-02T03:04:05Z "],
)  # fmt: skip
def test_parse_iso_reads_every_form_as_the_same_instant(text):
    assert parse_iso(text) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_parse_iso_refuses_what_is_not_iso():
    with pytest.raises(ValueError):
        parse_iso("next tuesday")


def test_iso_offsets_and_durations():
    assert iso(datetime(2030, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2030-01-02T03:04:05Z"
    assert parse_offset("+1d6h") == timedelta(days=1, hours=6)
    assert parse_offset("+0s") == timedelta(0)
    assert parse_offset("1d") is None and parse_offset("+1y") is None
    assert [short_duration(s) for s in (604800, 172800, 5400, 90)] == ["1w", "2d", "90m", "90s"]
    assert [human_duration(s) for s in (604800, 129600, 60, 0)] == [
        "1 week", "36 hours", "1 minute", "0 seconds",
    ]  # fmt: skip
