"""The send policy (workflows.policy) as a table: every rule of CONTRACT.md §6 and the
daylight-saving switch days of Europe/Berlin and America/New_York."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from workflows.policy import (
    NO_ADDRESS,
    SEND,
    SKIP,
    SendDecision,
    SendRequest,
    decide_send,
    local_instant,
    next_local_time,
    quiet_end,
    resolve_zone,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = utc("2030-01-10T12:00:00")  # 13:00 in Berlin
QUIET = (21 * 60, 8 * 60)
CAP = (2, 86400)
A = "ann@example.test"


NO_ADDRESS_DETAIL = "customer has no email address"

ADDRESS_CASES = [
    # (kind, address, decision): what decide_send did before the contact policy
    ("send", "ann@example.test", SendDecision(SEND, to="ann@example.test")),
    ("send", "Ann <ann@example.test>", SendDecision(SEND, to="Ann <ann@example.test>")),
    ("notify", "support@acme.test", SendDecision(SEND, to="support@acme.test")),
    ("send", None, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", "", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", "ann.example.test", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", 42, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", ["a@b.test"], SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", {"email": "a@b"}, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("notify", "", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
]


@pytest.mark.parametrize(("kind", "address", "expected"), ADDRESS_CASES)
def test_decide_send(kind, address, expected):
    assert decide_send(kind, address) == expected
    assert decide_send(kind, address, SendRequest(now=NOW)) == expected  # nothing to stop it


def req(**kw) -> SendRequest:
    return SendRequest(**{"now": NOW, **kw})


CASES = [
    # (name, kind, address, request, expected)
    ("notify ignores the policy", "notify", "t@x.test", req(unsubscribed=True), ("send", "")),
    ("no address", "send", None, req(), ("skip", "no_address")),
    ("plain send", "send", A, req(), ("send", "")),
    ("no request: as before", "send", A, None, ("send", "")),
    ("unsubscribed", "send", A, req(unsubscribed=True), ("suppress", "unsubscribed")),
    ("no consent", "send", A, req(consent=False), ("suppress", "no_consent")),
    ("bounced, marketing", "send", A, req(suppressed=(A,)), ("suppress", "bounced")),
    (
        "bounced, any case",
        "send",
        "Ann@Example.TEST",
        req(suppressed=(A,)),
        ("suppress", "bounced"),
    ),
    (
        "bounced, with a display name",
        "send",
        "Ann <Ann@example.test>",
        req(suppressed=(A,)),
        ("suppress", "bounced"),
    ),
    (
        "bounced wins over unsubscribed",
        "send",
        A,
        req(suppressed=(A,), unsubscribed=True),
        ("suppress", "bounced"),
    ),
    (
        "transactional: bounced still suppressed",
        "send",
        A,
        req(message_class="transactional", suppressed=(A,)),
        ("suppress", "bounced"),
    ),
    (
        "transactional ignores unsubscribe, consent, quiet hours and cap",
        "send",
        A,
        req(
            message_class="transactional",
            unsubscribed=True,
            consent=False,
            zone="Europe/Berlin",
            quiet_hours=(0, 23 * 60 + 59),
            cap=(1, 86400),
            sent=(NOW - timedelta(hours=1),),
        ),
        ("send", ""),
    ),
    ("outside quiet hours", "send", A, req(zone="Europe/Berlin", quiet_hours=QUIET), ("send", "")),
    (
        "inside quiet hours: defer",
        "send",
        A,
        req(now=utc("2030-01-10T21:30:00"), zone="Europe/Berlin", quiet_hours=QUIET),
        ("defer", "quiet_hours"),
    ),
    (
        "quiet hours start inside",
        "send",
        A,
        req(now=utc("2030-01-10T20:00:00"), zone="Europe/Berlin", quiet_hours=QUIET),
        ("defer", "quiet_hours"),
    ),
    (
        "quiet hours end outside",
        "send",
        A,
        req(now=utc("2030-01-10T07:00:00"), zone="Europe/Berlin", quiet_hours=QUIET),
        ("send", ""),
    ),
    ("under the cap", "send", A, req(cap=CAP, sent=(NOW - timedelta(hours=2),)), ("send", "")),
    (
        "at the cap: defer",
        "send",
        A,
        req(cap=CAP, sent=(NOW - timedelta(hours=2), NOW - timedelta(hours=1))),
        ("defer", "capped"),
    ),
    (
        "at the cap, when_capped skip",
        "send",
        A,
        req(cap=CAP, when_capped="skip", sent=(NOW - timedelta(hours=2), NOW)),
        ("suppress", "capped"),
    ),
    (
        "old sends leave the window",
        "send",
        A,
        req(cap=CAP, sent=(NOW - timedelta(days=2), NOW - timedelta(hours=25))),
        ("send", ""),
    ),
    (
        "unsubscribed wins over the cap",
        "send",
        A,
        req(cap=CAP, unsubscribed=True, sent=(NOW, NOW)),
        ("suppress", "unsubscribed"),
    ),
    # The journey's holdout (CONTRACT.md §8): sent nothing, before anything else is looked at
    ("holdout", "send", A, req(holdout=True), ("suppress", "holdout")),
    ("holdout without an address", "send", None, req(holdout=True), ("suppress", "holdout")),
    (
        "holdout, transactional",
        "send",
        A,
        req(holdout=True, message_class="transactional"),
        ("suppress", "holdout"),
    ),
    (
        "holdout wins over bounced",
        "send",
        A,
        req(holdout=True, suppressed=(A,)),
        ("suppress", "holdout"),
    ),
    ("holdout: a notify still goes", "notify", "t@x.test", req(holdout=True), ("send", "")),
]


@pytest.mark.parametrize("name,kind,address,request_,expected", CASES, ids=[c[0] for c in CASES])
def test_decide_send_table(name, kind, address, request_, expected):
    decision = decide_send(kind, address, request_)
    assert (decision.action, decision.reason) == expected


def test_a_deferral_says_until_when_and_why():
    quiet = decide_send(
        "send", A, req(now=utc("2030-01-10T21:30:00"), zone="Europe/Berlin", quiet_hours=QUIET)
    )
    assert quiet == SendDecision(
        "defer",
        reason="quiet_hours",
        detail="quiet hours until 08:00 Europe/Berlin",
        until=utc("2030-01-11T07:00:00"),
    )
    capped = decide_send(
        "send", A, req(cap=CAP, sent=(utc("2030-01-10T02:00:00"), utc("2030-01-10T09:00:00")))
    )
    assert capped == SendDecision(
        "defer",
        reason="capped",
        detail="frequency cap: 2 sent since 2030-01-09T12:00:00Z",
        until=utc("2030-01-11T02:00:00"),
    )


def test_a_cap_release_inside_quiet_hours_waits_for_their_end():
    # The oldest send leaves the window at 23:00 Berlin: then quiet hours hold it to 08:00.
    decision = decide_send(
        "send",
        A,
        req(
            cap=CAP,
            zone="Europe/Berlin",
            quiet_hours=QUIET,
            sent=(utc("2030-01-09T22:00:00"), utc("2030-01-10T10:00:00")),
        ),
    )
    assert (decision.action, decision.reason, decision.until) == (
        "defer",
        "capped",
        utc("2030-01-11T07:00:00"),
    )


# ------------------------------------------------------------------ daylight saving

DST = [
    # zone, local date, HH:MM, the instant (UTC)
    ("Europe/Berlin", date(2030, 3, 31), "02:30", "2030-03-31T01:00:00"),  # skipped: the jump
    ("Europe/Berlin", date(2030, 3, 31), "03:00", "2030-03-31T01:00:00"),
    ("Europe/Berlin", date(2030, 3, 31), "08:00", "2030-03-31T06:00:00"),  # CEST
    ("Europe/Berlin", date(2030, 3, 30), "08:00", "2030-03-30T07:00:00"),  # CET
    ("Europe/Berlin", date(2030, 10, 27), "02:30", "2030-10-27T00:30:00"),  # repeated: first
    ("Europe/Berlin", date(2030, 10, 27), "08:00", "2030-10-27T07:00:00"),  # CET again
    ("America/New_York", date(2030, 3, 10), "02:30", "2030-03-10T07:00:00"),  # skipped
    ("America/New_York", date(2030, 3, 10), "08:00", "2030-03-10T12:00:00"),  # EDT
    ("America/New_York", date(2030, 11, 3), "01:30", "2030-11-03T05:30:00"),  # repeated: first
    ("America/New_York", date(2030, 11, 3), "08:00", "2030-11-03T13:00:00"),  # EST
]


@pytest.mark.parametrize("zone,day,hhmm,expected", DST)
def test_local_times_on_switch_days(zone, day, hhmm, expected):
    h, m = map(int, hhmm.split(":"))
    assert local_instant(zone, day, h * 60 + m) == utc(expected)


WINDOWS = [
    # zone, window, now (UTC), expected end (UTC) or None
    # Berlin spring forward (31 March 2030): a night window ends at 08:00 CEST = 06:00 UTC.
    ("Europe/Berlin", "21:00-08:00", "2030-03-30T23:00:00", "2030-03-31T06:00:00"),
    ("Europe/Berlin", "21:00-08:00", "2030-03-31T05:59:59", "2030-03-31T06:00:00"),
    ("Europe/Berlin", "21:00-08:00", "2030-03-31T06:00:00", None),
    # ... a window ending inside the skipped hour ends at the jump (03:00 CEST).
    ("Europe/Berlin", "21:00-02:30", "2030-03-31T00:30:00", "2030-03-31T01:00:00"),
    ("Europe/Berlin", "21:00-02:30", "2030-03-31T01:00:00", None),
    # Berlin fall back (27 October 2030): 21:00-02:30 ends at the first 02:30 (CEST) ...
    ("Europe/Berlin", "21:00-02:30", "2030-10-27T00:00:00", "2030-10-27T00:30:00"),
    ("Europe/Berlin", "21:00-02:30", "2030-10-27T00:30:00", None),
    # ... and does not start again when 02:00-02:30 repeats (now 02:10 CET).
    ("Europe/Berlin", "21:00-02:30", "2030-10-27T01:10:00", None),
    ("Europe/Berlin", "21:00-08:00", "2030-10-27T06:30:00", "2030-10-27T07:00:00"),  # 07:30 CET
    # New York spring forward (10 March 2030) and fall back (3 November 2030).
    ("America/New_York", "22:00-02:30", "2030-03-10T06:30:00", "2030-03-10T07:00:00"),
    ("America/New_York", "22:00-07:00", "2030-03-10T10:30:00", "2030-03-10T11:00:00"),
    ("America/New_York", "22:00-01:30", "2030-11-03T05:00:00", "2030-11-03T05:30:00"),
    ("America/New_York", "22:00-01:30", "2030-11-03T06:10:00", None),  # 01:10 EST, repeated
    ("America/New_York", "22:00-07:00", "2030-11-03T11:30:00", "2030-11-03T12:00:00"),
    # A window that does not cross midnight.
    ("UTC", "12:00-14:00", "2030-01-01T13:00:00", "2030-01-01T14:00:00"),
    ("UTC", "12:00-14:00", "2030-01-01T11:59:59", None),
]


@pytest.mark.parametrize("zone,window,now,expected", WINDOWS)
def test_quiet_hours_across_daylight_saving(zone, window, now, expected):
    start, end = (int(p[:2]) * 60 + int(p[3:]) for p in window.split("-"))
    got = quiet_end((start, end), zone, utc(now))
    assert got == (utc(expected) if expected else None)


def test_wait_until_a_time_of_day_is_the_next_one_in_the_zone():
    berlin = "Europe/Berlin"
    assert next_local_time(berlin, 9 * 60, utc("2030-03-30T10:00:00")) == utc(
        "2030-03-31T07:00:00"
    )  # tomorrow, in CEST
    assert next_local_time(berlin, 9 * 60, utc("2030-03-30T07:00:00")) == utc("2030-03-30T08:00:00")
    assert next_local_time(berlin, 9 * 60, utc("2030-03-30T08:00:00")) == utc(
        "2030-03-30T08:00:00"
    )  # exactly now: no wait
    assert next_local_time(berlin, 150, utc("2030-03-30T12:00:00")) == utc("2030-03-31T01:00:00")


def test_zone_falls_back_from_an_invalid_name():
    assert resolve_zone("America/New_York", "Europe/Berlin") == ("America/New_York", "")
    assert resolve_zone(None, "Europe/Berlin") == ("Europe/Berlin", "")
    assert resolve_zone("Mars/Olympus", "Europe/Berlin") == ("Europe/Berlin", "Mars/Olympus")
    assert resolve_zone("../../etc/passwd", "") == ("UTC", "../../etc/passwd")
    assert resolve_zone(42, "") == ("UTC", "42")
    assert resolve_zone(None, "") == ("UTC", "")
