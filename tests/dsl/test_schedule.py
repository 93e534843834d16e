"""dsl.schedule and dsl.zones: when each timer trigger is due, as a table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsl.ir import Trigger
from dsl.schedule import describe_due, next_due
from dsl.zones import resolve_zone

NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
BERLIN = resolve_zone({"timezone": "Europe/Berlin"}, None)
UTC_ZONE = resolve_zone({}, None)


def due(trigger, profile=None, zone=UTC_ZONE, now=NOW, **memory):
    found = next_due(trigger, profile or {}, zone, now, **memory)
    return None if found is None else (found.at.isoformat(), found.mark, found.data)


def test_zones_fall_back_from_the_customer_to_the_default_to_utc():
    assert str(resolve_zone({"timezone": "Asia/Tokyo"}, "Europe/Berlin")) == "Asia/Tokyo"
    assert str(resolve_zone({"timezone": "Mars/Base"}, "Europe/Berlin")) == "Europe/Berlin"
    assert str(resolve_zone({"timezone": 7}, "nowhere")) == "UTC"
    assert str(resolve_zone(None, None)) == "UTC"


INACTIVE = Trigger(kind="inactivity", event="order.placed", seconds=86400 * 60)


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ({}, None),  # no event yet: nothing to count from
        (
            {"first_at": "2030-01-01T00:00:00Z"},
            ("2030-03-02T00:00:00+00:00", "2030-01-01T00:00:00Z", {"last_at": None}),
        ),
        (
            {"first_at": "2030-01-01T00:00:00Z", "last_at": "2030-01-05T10:00:00Z"},
            (
                "2030-03-06T10:00:00+00:00",
                "2030-01-05T10:00:00Z",
                {"last_at": "2030-01-05T10:00:00Z"},
            ),
        ),
        # fired for this spell already: not again until another order
        ({"last_at": "2030-01-05T10:00:00Z", "fired": "2030-01-05T10:00:00Z"}, None),
    ],
)
def test_inactivity(memory, expected):
    assert due(INACTIVE, **memory) == expected


YEARLY = Trigger(kind="date", path="birthday", yearly=True, at="10:00")


@pytest.mark.parametrize(
    ("birthday", "zone", "now", "expected_at"),
    [
        ("1992-02-29", BERLIN, NOW, "2030-02-28T09:00:00+00:00"),  # not a leap year
        ("1992-02-29", BERLIN, datetime(2031, 6, 1, tzinfo=UTC), "2032-02-29T09:00:00+00:00"),
        ("01-10", UTC_ZONE, NOW, "2031-01-10T10:00:00+00:00"),  # today, but 10:00 has passed
        ("--01-11", UTC_ZONE, NOW, "2030-01-11T10:00:00+00:00"),
        ("1990-07-04T23:30:00Z", BERLIN, NOW, "2030-07-05T08:00:00+00:00"),  # its local date
        ("1990-13-01", UTC_ZONE, NOW, None),
        (19900101, UTC_ZONE, NOW, None),
        (None, UTC_ZONE, NOW, None),
    ],
)
def test_every_year_on_a_date(birthday, zone, now, expected_at):
    found = due(YEARLY, {"birthday": birthday}, zone, now)
    assert (found and found[0]) == expected_at


def test_yearly_after_firing_is_next_year():
    mark = "2030-02-28T09:00:00Z"
    found = due(YEARLY, {"birthday": "02-28"}, BERLIN, NOW, fired=mark)
    assert found[0] == "2031-02-28T09:00:00+00:00"


RENEWAL = Trigger(kind="date", path="plan.renews", seconds=-7 * 86400)


@pytest.mark.parametrize(
    ("value", "trigger", "fired", "expected_at"),
    [
        ("2030-02-01", RENEWAL, None, "2030-01-25T09:00:00+00:00"),  # a date: 09:00
        ("2030-02-01T18:30:00+01:00", RENEWAL, None, "2030-01-25T17:30:00+00:00"),
        ("2030-01-15", RENEWAL, None, None),  # 2030-01-08 is past: never fires
        ("2030-02-01", RENEWAL, "2030-01-25T09:00:00Z", None),  # fired for this value
        ("02-01", RENEWAL, None, None),  # no year: only `every year on` takes it
        (
            "2030-02-01T18:30:00Z",
            Trigger(kind="date", path="plan.renews", seconds=3600, at="08:15"),
            None,
            "2030-02-01T08:15:00+00:00",
        ),
    ],
)
def test_on_a_date_or_date_time(value, trigger, fired, expected_at):
    found = due(trigger, {"plan": {"renews": value}}, UTC_ZONE, NOW, fired=fired)
    assert (found and found[0]) == expected_at


def test_describe_due_in_local_time():
    at = datetime(2031, 1, 20, 9, 0, tzinfo=UTC)
    assert describe_due(YEARLY, at, BERLIN, NOW) == "birthday: 20 Jan 2031 10:00 Europe/Berlin"
    at = datetime(2030, 3, 2, 0, 0, tzinfo=UTC)
    assert (
        describe_due(INACTIVE, at, UTC_ZONE, NOW) == "no order.placed for 60 days: 2 Mar 00:00 UTC"
    )


def test_trigger_keys_round_trip():
    for t in (INACTIVE, YEARLY, RENEWAL, Trigger(kind="segment", src="x", expr=["lit", True])):
        assert Trigger.from_key(t.key) == t
    assert Trigger.from_key("order.placed") == Trigger(kind="event", event="order.placed")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 28 March 2027: Berlin's clock jumps from 02:00 to 03:00. 02:30 does not exist and
        # is read with the offset from before the jump (RFC 5545): 03:30 CEST.
        ("03-28", "2027-03-28T01:30:00+00:00"),
        # 31 October 2027: 02:00-03:00 happens twice; the first 02:30 (CEST) counts.
        ("10-31", "2027-10-31T00:30:00+00:00"),
    ],
)
def test_a_local_time_on_a_daylight_saving_day_follows_icalendar(day, expected):
    trigger = Trigger(kind="date", path="birthday", yearly=True, at="02:30")
    now = datetime(2027, 3, 1, tzinfo=UTC)
    found = next_due(trigger, {"birthday": day}, BERLIN, now)
    assert found is not None
    assert found.at.astimezone(UTC).isoformat() == expected
