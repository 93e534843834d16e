"""The send policy: where every decision to send an email, or not, is made.

In: what the interpreter knows at a ``send`` / ``notify`` step: the step's kind and the
address it would go to, and (``SendRequest``, CONTRACT.md §6) the journey's message class
and ``when_capped``, the customer's subscription, consent and suppressed addresses, the
marketing emails sent recently, the time now, the customer's time zone, quiet hours and
frequency cap. Out: a ``SendDecision``: ``send`` (to that address), ``skip`` (no
address), ``suppress`` (reason ``bounced``, ``unsubscribed``, ``no_consent`` or
``capped``) or ``defer`` (until when, reason ``quiet_hours`` or ``capped``, and the
words ``lifecycle status`` shows).

Order of the checks: no address; a suppressed (bounced) address, for every class;
then, for marketing only: unsubscribed, consent, the frequency cap (``skip`` suppresses,
``wait`` defers until the oldest counted email leaves the window), quiet hours (defer to
the window's end). A deferral is computed to the first instant at which both the cap and
quiet hours allow the send; the interpreter decides again when it wakes, so a change of
profile meanwhile (an unsubscribe) is honoured.

Quiet hours are local wall-clock times in the customer's zone. A window is anchored on a
local date: it starts at the first instant the local clock shows its start on that date,
and ends at the first instant the clock shows its end (on the next date when the window
crosses midnight). On a day the clock springs forward, a time inside the skipped hour is
reached at the jump (02:30 in Europe/Berlin on the last Sunday of March is 03:00 CEST);
on a day it falls back, a time inside the repeated hour is its first occurrence, and a
window that has ended does not start again when the hour repeats.

Pure: no Temporal, no I/O, no clock of its own (zoneinfo reads the pinned tzdata);
importable in the workflow sandbox and tested as a table (tests/workflows/test_policy.py).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parseaddr
from typing import Any

from dsl.zones import zone_named

SEND = "send"
SKIP = "skip"
SUPPRESS = "suppress"
DEFER = "defer"
NO_ADDRESS = "no_address"
BOUNCED = "bounced"
UNSUBSCRIBED = "unsubscribed"
NO_CONSENT = "no_consent"
CAPPED = "capped"
HOLDOUT = "holdout"  # CONTRACT.md §8: the journey's holdout is sent nothing
QUIET_HOURS = "quiet_hours"
MARKETING = "marketing"
TRANSACTIONAL = "transactional"


@dataclass(frozen=True)
class SendDecision:
    action: str  # "send" | "skip" | "suppress" | "defer"
    to: str = ""  # for "send": the recipient
    reason: str = ""  # for anything but "send": a stable code
    detail: str = ""  # for the journal and `lifecycle status`: what happened, in words
    until: datetime | None = None  # for "defer": when to decide again


@dataclass(frozen=True)
class SendRequest:
    """Everything the contact policy looks at (all optional: the default sends)."""

    message_class: str = MARKETING
    when_capped: str = "wait"  # "wait" | "skip"
    unsubscribed: bool = False
    consent: bool = True  # settings.consent as evaluated (True when there is none)
    suppressed: tuple[str, ...] = ()  # addresses as address_key() gives them
    now: datetime | None = None  # aware, UTC
    zone: str = "UTC"  # a valid IANA name (resolve_zone)
    quiet_hours: tuple[int, int] | None = None  # minutes after local midnight: start, end
    cap: tuple[int, int] | None = None  # (count, seconds)
    sent: tuple[datetime, ...] = field(default_factory=tuple)  # marketing emails sent
    holdout: bool = False  # the customer is in the journey's holdout (CONTRACT.md §8)


def decide_send(kind: str, address: Any, request: SendRequest | None = None) -> SendDecision:
    """Whether a ``send`` (``address``: the profile's ``email``) or a ``notify``
    (``address``: the team's address) goes out now; ``request`` is the contact policy's
    input (None, or a notify: only the address is checked). A holdout customer is sent
    nothing, whatever else holds (reason ``holdout``)."""
    if kind == "send" and request is not None and request.holdout:
        return SendDecision(
            SUPPRESS, reason=HOLDOUT, detail="the customer is in the journey's holdout"
        )
    if not isinstance(address, str) or "@" not in address:
        return SendDecision(SKIP, reason=NO_ADDRESS, detail="customer has no email address")
    if request is None or kind != "send":
        return SendDecision(SEND, to=address)
    r = request
    if address_key(address) in r.suppressed:
        return SendDecision(
            SUPPRESS, reason=BOUNCED, detail=f"{address} is suppressed after a hard bounce"
        )
    if r.message_class == TRANSACTIONAL:
        return SendDecision(SEND, to=address)
    if r.unsubscribed:
        return SendDecision(SUPPRESS, reason=UNSUBSCRIBED, detail="the customer unsubscribed")
    if not r.consent:
        return SendDecision(
            SUPPRESS, reason=NO_CONSENT, detail="settings.consent does not hold for the customer"
        )
    now = r.now or datetime.now(UTC)  # the workflow always passes its clock
    when, reason, detail = now, "", ""
    for _ in range(8):  # cap and quiet hours, until both allow (converges in 2-3 rounds)
        moved = False
        if r.cap is not None:
            release = cap_release(r.cap, r.sent, when)
            if release is not None:
                if r.when_capped == "skip":
                    return SendDecision(SUPPRESS, reason=CAPPED, detail=cap_detail(r.cap, when))
                if not reason:
                    reason, detail = CAPPED, cap_detail(r.cap, when)
                when, moved = release, True
        if r.quiet_hours is not None:
            end = quiet_end(r.quiet_hours, r.zone, when)
            if end is not None:
                if not reason:
                    local = end.astimezone(zone_of(r.zone))
                    reason, detail = QUIET_HOURS, f"quiet hours until {local:%H:%M} {r.zone}"
                when, moved = end, True
        if not moved:
            break
    if when > now:
        return SendDecision(DEFER, reason=reason, detail=detail, until=when)
    return SendDecision(SEND, to=address)


def address_key(address: str) -> str:
    """How an address is kept on a suppression list: the bare address, lower case
    (``Ann <Ann@Example.test>`` → ``ann@example.test``)."""
    bare = parseaddr(address)[1]
    return (bare or address).strip().lower()


# --------------------------------------------------------------------------- the cap


def cap_release(cap: tuple[int, int], sent: tuple[datetime, ...], now: datetime):
    """None when one more email at ``now`` stays within the cap; else the instant the
    oldest counted email leaves the trailing window (then one more fits)."""
    count, seconds = cap
    window = timedelta(seconds=seconds)
    counted = sorted(t for t in sent if now - window < t <= now)
    if len(counted) < count:
        return None
    # Sends after now (none in practice) cannot exist; the (len - count + 1)-th oldest
    # must leave for the count to drop below the cap.
    return counted[len(counted) - count] + window


def cap_detail(cap: tuple[int, int], now: datetime) -> str:
    count, seconds = cap
    since = (now - timedelta(seconds=seconds)).astimezone(UTC)
    return f"frequency cap: {count} sent since {since:%Y-%m-%dT%H:%M:%SZ}"


# --------------------------------------------------------------------------- time zones


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The zone ``name``, from the pinned tzdata first (``dsl.zones``: the same data as date
    triggers, and the same on every worker that replays a history)."""
    zone = zone_named(name)
    if zone is None:
        raise zoneinfo.ZoneInfoNotFoundError(name)
    return zone


def valid_zone(name: str) -> bool:
    return zone_named(name) is not None


def resolve_zone(customer_zone: Any, default_zone: str) -> tuple[str, str]:
    """The zone to use and, when ``customer.timezone`` was set but is not a valid IANA
    name, that name (to be reported once): ``customer.timezone``, else the settings'
    ``timezone``, else UTC."""
    bad = ""
    if isinstance(customer_zone, str) and customer_zone:
        if valid_zone(customer_zone):
            return customer_zone, ""
        bad = customer_zone
    elif customer_zone is not None:
        bad = str(customer_zone)
    if default_zone and valid_zone(default_zone):
        return default_zone, bad
    return "UTC", bad


def local_instant(zone: str, day: date, minutes: int) -> datetime:
    """The first instant (UTC) at which the local clock in ``zone`` shows ``minutes``
    after midnight on ``day``, or shows a later time of that day: the first of a
    repeated time, the moment of the jump for a skipped one."""
    tz = zone_of(zone)
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists (fold=0 is the first of a repeated time)
    # Skipped by a jump forward: find the jump, to the second.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the jump
    hi = first  # after it
    while (hi - lo).total_seconds() > 1:
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def quiet_end(quiet: tuple[int, int], zone: str, now: datetime) -> datetime | None:
    """The end of the quiet-hours window ``now`` is in, or None when it is outside."""
    start, end = quiet
    today = now.astimezone(zone_of(zone)).date()
    for anchor in (today - timedelta(days=1), today):
        begins = local_instant(zone, anchor, start)
        ends = local_instant(zone, anchor + timedelta(days=1) if end < start else anchor, end)
        if begins <= now < ends:
            return ends
    return None


def next_local_time(zone: str, minutes: int, now: datetime) -> datetime:
    """``wait until HH:MM``: the first instant at or after ``now`` at which the local
    clock shows that time (today's, else tomorrow's)."""
    today = now.astimezone(zone_of(zone)).date()
    for days in range(0, 3):
        at = local_instant(zone, today + timedelta(days=days), minutes)
        if at >= now:
            return at
    return local_instant(zone, today + timedelta(days=3), minutes)  # unreachable
