"""The contact policy (CONTRACT.md §6) on Temporal's time-skipping server, through the
simulator, with the real email activity, ledger and SMTP server: quiet hours in two zones,
the frequency cap across journeys (wait and skip), unsubscribe and consent mid-journey,
hard bounces (also for a second customer id with the same address), complaints,
transactional email, `wait until`, and a daylight-saving night. Timelines pinned in full."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from engine.tools.simulator import simulate
from tests.workflows.harness import START, compile_store, event, run, signup, write_templates

NAMES = ["a1", "a2", "a3", "b1", "r1", "r2"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return write_templates(tmp_path_factory.mktemp("templates"), NAMES)


def timeline(result, customer_id: str | None = None) -> list[tuple]:
    """(time to the minute, journey, action, template, status-or-until, reason) per line,
    by time, then journey (a journal line is written when its send finished, so two
    journeys' lines of one instant may come in either order)."""
    out = []
    for a in result.public_actions():
        if customer_id not in (None, a["customer_id"]) or a["action"] == "end":
            continue
        at = a["at"][:16].replace("T", " ")
        if a["action"] == "defer":
            out.append((at, a["journey"], "defer", a["template"], a["until"][:16], a["reason"]))
        else:
            status = a.get("status", "sent")
            out.append((at, a["journey"], a["action"], a["template"], status, a.get("reason", "")))
    return sorted(out, key=lambda line: line[:2])


def day(d: float, hours: float = 0) -> datetime:
    return START + timedelta(days=d, hours=hours)


QUIET = """
settings:
  timezone: "Europe/Berlin"
  quiet_hours: "21:00-08:00"
journeys:
  promo:
    trigger: customer.signed_up
    steps:
      - send a1
      - wait 4 hours
      - send a2
"""


async def test_quiet_hours_defer_in_each_customers_zone(sim_env, templates):
    # 22:00 UTC: 23:00 in Berlin (quiet), 17:00 in New York (not yet).
    result = await run(
        QUIET,
        templates,
        [
            (day(0, 22), signup("ann")[1]),
            (day(0, 22), signup("bob", timezone="America/New_York")[1]),
        ],
        until=timedelta(days=3),
        env=sim_env,
    )
    assert timeline(result, "ann") == [
        ("2030-01-01 22:00", "promo", "defer", "a1", "2030-01-02T07:00", "quiet_hours"),
        ("2030-01-02 07:00", "promo", "send", "a1", "sent", ""),
        ("2030-01-02 11:00", "promo", "send", "a2", "sent", ""),
    ]
    # Bob's second email falls at 21:00 in New York: quiet hours start inside.
    assert timeline(result, "bob") == [
        ("2030-01-01 22:00", "promo", "send", "a1", "sent", ""),
        ("2030-01-02 02:00", "promo", "defer", "a2", "2030-01-02T13:00", "quiet_hours"),
        ("2030-01-02 13:00", "promo", "send", "a2", "sent", ""),
    ]
    defer = next(a for a in result.public_actions() if a["action"] == "defer")
    assert defer["detail"] == "quiet hours until 08:00 Europe/Berlin"


async def test_quiet_hours_on_the_night_berlin_springs_forward(sim_env, templates):
    # 31 March 2030: 02:00 CET jumps to 03:00 CEST. A window to 02:30 ends at the jump.
    rules = QUIET.replace("21:00-08:00", "21:00-02:30")
    start = datetime.fromisoformat("2030-03-31T00:30:00+00:00")  # 01:30 CET
    store = compile_store(rules, templates)
    ev = signup("ann")[1]
    result = await simulate(
        [(start, ev)], None, templates, start, timedelta(days=1), store=store, env=sim_env
    )
    assert timeline(result) == [
        ("2030-03-31 00:30", "promo", "defer", "a1", "2030-03-31T01:00", "quiet_hours"),
        ("2030-03-31 01:00", "promo", "send", "a1", "sent", ""),
        ("2030-03-31 05:00", "promo", "send", "a2", "sent", ""),
    ]


CAP = """
settings:
  frequency_cap: "2 per 1 day"
journeys:
  first:
    trigger: customer.signed_up
    steps:
      - send a1
      - wait 1 hour
      - send a2
      - send a3
  second:
    trigger: customer.signed_up
    steps:
      - send b1
"""


async def test_the_cap_defers_across_journeys_and_is_never_exceeded(sim_env, templates):
    result = await run(CAP, templates, [signup("ann")], until=timedelta(days=5), env=sim_env)
    # a1 and b1 are due at the same instant: the journey that started first decides
    # first; a2 waits until a1 and b1 leave the 1-day window (a3 then fits too).
    assert timeline(result) == [
        ("2030-01-01 00:00", "first", "send", "a1", "sent", ""),
        ("2030-01-01 00:00", "second", "send", "b1", "sent", ""),
        ("2030-01-01 01:00", "first", "defer", "a2", "2030-01-02T00:00", "capped"),
        ("2030-01-02 00:00", "first", "send", "a2", "sent", ""),
        ("2030-01-02 00:00", "first", "send", "a3", "sent", ""),
    ]
    sent = [a for a in result.public_actions() if a["action"] == "send"]
    times = sorted(datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in sent)
    for i, t in enumerate(times):  # never more than 2 in any 1-day window
        assert len([u for u in times[: i + 1] if t - u < timedelta(days=1)]) <= 2
    assert sorted(a["template"] for a in sent) == ["a1", "a2", "a3", "b1"]


async def test_when_capped_skip_suppresses(sim_env, templates):
    rules = CAP.replace('"2 per 1 day"', '"1 per 1 day"').replace(
        "  second:\n", "  second:\n    when_capped: skip\n"
    )
    result = await run(rules, templates, [signup("ann")], until=timedelta(days=3), env=sim_env)
    lines = timeline(result)
    assert lines[:2] == [
        ("2030-01-01 00:00", "first", "send", "a1", "sent", ""),
        ("2030-01-01 00:00", "second", "send", "b1", "suppressed", "capped"),
    ]
    assert [line[2:4] for line in lines[2:]] == [
        ("defer", "a2"),
        ("send", "a2"),
        ("defer", "a3"),
        ("send", "a3"),
    ]


SERIES = """
settings:
  consent: customer.marketing_opt_in
journeys:
  series:
    trigger: customer.signed_up
    steps:
      - send a1
      - wait 1 day
      - send a2
      - wait 1 day
      - send a3
  receipts:
    trigger: order.placed
    class: transactional
    steps:
      - send r1
"""


async def test_unsubscribe_and_consent_are_checked_at_every_send(sim_env, templates):
    result = await run(
        SERIES,
        templates,
        [
            signup("ann", marketing_opt_in=True),
            event("customer.unsubscribed", "ann", 0.5),
            event("customer.resubscribed", "ann", 1.5),
            signup("bob", marketing_opt_in=True),
            event("profile.updated", "bob", 0.5, customer={"marketing_opt_in": False}),
            signup("cid", marketing_opt_in=False),
            event("order.placed", "cid", 0.1),
        ],
        until=timedelta(days=3),
        env=sim_env,
    )
    assert timeline(result, "ann") == [
        ("2030-01-01 00:00", "series", "send", "a1", "sent", ""),
        ("2030-01-02 00:00", "series", "send", "a2", "suppressed", "unsubscribed"),
        ("2030-01-03 00:00", "series", "send", "a3", "sent", ""),
    ]
    assert timeline(result, "bob") == [
        ("2030-01-01 00:00", "series", "send", "a1", "sent", ""),
        ("2030-01-02 00:00", "series", "send", "a2", "suppressed", "no_consent"),
        ("2030-01-03 00:00", "series", "send", "a3", "suppressed", "no_consent"),
    ]
    # Transactional mail goes out without consent, and carries no List-Unsubscribe.
    assert timeline(result, "cid") == [
        ("2030-01-01 00:00", "series", "send", "a1", "suppressed", "no_consent"),
        ("2030-01-01 02:24", "receipts", "send", "r1", "sent", ""),
        ("2030-01-02 00:00", "series", "send", "a2", "suppressed", "no_consent"),
        ("2030-01-03 00:00", "series", "send", "a3", "suppressed", "no_consent"),
    ]
    by_subject = {m.message["Subject"]: m.message for m in result.emails}
    assert "List-Unsubscribe" not in by_subject["r1 for Cid"]
    assert "List-Unsubscribe" in by_subject["a1 for Ann"]


async def test_transactional_ignores_quiet_hours_cap_and_unsubscribe(sim_env, templates):
    rules = """
settings:
  quiet_hours: "00:00-23:59"
  frequency_cap: "1 per 1 week"
journeys:
  receipts:
    trigger: order.placed
    class: transactional
    steps:
      - send r1
      - send r2
"""
    result = await run(
        rules,
        templates,
        [
            signup("ann"),
            event("customer.unsubscribed", "ann", 0.1),
            event("order.placed", "ann", 0.2),
        ],
        until=timedelta(days=1),
        env=sim_env,
    )
    assert timeline(result) == [
        ("2030-01-01 04:48", "receipts", "send", "r1", "sent", ""),
        ("2030-01-01 04:48", "receipts", "send", "r2", "sent", ""),
    ]


BOUNCE = """
journeys:
  series:
    trigger: customer.signed_up
    steps:
      - send a1
      - wait 1 day
      - send a2
  receipts:
    trigger: order.placed
    class: transactional
    steps:
      - send r1
"""


async def test_a_hard_bounce_suppresses_the_address_for_every_class_and_customer(
    sim_env, templates
):
    shared = "shared@example.test"
    store = compile_store(BOUNCE, templates)
    events = [
        signup("ann", email=shared),
        event("order.placed", "ann", 0.5),
        # A second customer id with the same address, after the bounce.
        signup("bob", 0.2, email=shared),
        signup("cid", 0.2),
    ]
    rejected = []

    def reject(rcpt: str):
        if rcpt == shared and not rejected:
            rejected.append(rcpt)
            return "550 5.1.1 no such user"
        return None

    result = await simulate(
        events,
        None,
        templates,
        START,
        timedelta(days=2),
        store=store,
        env=sim_env,
        smtp_reject=reject,
    )
    assert timeline(result, "ann") == [
        ("2030-01-01 00:00", "series", "send", "a1", "bounced", ""),
        ("2030-01-01 12:00", "receipts", "send", "r1", "suppressed", "bounced"),
        ("2030-01-02 00:00", "series", "send", "a2", "suppressed", "bounced"),
    ]
    assert timeline(result, "bob") == [
        ("2030-01-01 04:48", "series", "send", "a1", "suppressed", "bounced"),
        ("2030-01-02 04:48", "series", "send", "a2", "suppressed", "bounced"),
    ]
    assert [line[4] for line in timeline(result, "cid")] == ["sent", "sent"]
    assert rejected == [shared]  # one SMTP attempt at the address, ever


async def test_a_complaint_unsubscribes_and_suppresses(sim_env, templates):
    result = await run(
        BOUNCE,
        templates,
        [signup("ann"), event("email.complained", "ann", 0.5), event("order.placed", "ann", 0.6)],
        until=timedelta(days=2),
        env=sim_env,
    )
    assert timeline(result) == [
        ("2030-01-01 00:00", "series", "send", "a1", "sent", ""),
        ("2030-01-01 14:24", "receipts", "send", "r1", "suppressed", "bounced"),
        ("2030-01-02 00:00", "series", "send", "a2", "suppressed", "bounced"),
    ]


async def test_an_unsubscribe_while_deferred_stops_the_send(sim_env, templates):
    rules = QUIET.replace('timezone: "Europe/Berlin"', 'timezone: "UTC"')
    result = await run(
        rules,
        templates,
        [(day(0, 22), signup("ann")[1]), (day(0, 23), event("customer.unsubscribed", "ann")[1])],
        until=timedelta(days=2),
        env=sim_env,
    )
    # Decided again when the unsubscribe arrives, not only when quiet hours end.
    assert timeline(result) == [
        ("2030-01-01 22:00", "promo", "defer", "a1", "2030-01-02T08:00", "quiet_hours"),
        ("2030-01-01 23:00", "promo", "send", "a1", "suppressed", "unsubscribed"),
        ("2030-01-02 03:00", "promo", "send", "a2", "suppressed", "unsubscribed"),
    ]


async def test_wait_until_a_time_of_day_and_a_profile_time(sim_env, templates):
    rules = """
settings:
  timezone: "America/New_York"
journeys:
  timed:
    trigger: customer.signed_up
    steps:
      - wait until 09:30
      - send a1
      - wait until customer.renewal_at
      - send a2
      - wait until customer.missing
      - send a3
      - wait until trigger.past
      - send b1
"""
    result = await run(
        rules,
        templates,
        [
            (
                day(0, 12),
                signup("ann", renewal_at="2030-01-05T10:00:00Z")[1]
                | {"data": {"past": "2029-01-01T00:00:00Z"}},
            ),
            (day(0, 12), signup("bob", timezone="Europe/Berlin")[1]),
        ],
        until=timedelta(days=7),
        env=sim_env,
    )
    # 12:00 UTC is 07:00 in New York: 09:30 there is 14:30 UTC. Null and past: no wait.
    assert timeline(result, "ann") == [
        ("2030-01-01 14:30", "timed", "send", "a1", "sent", ""),
        ("2030-01-05 10:00", "timed", "send", "a2", "sent", ""),
        ("2030-01-05 10:00", "timed", "send", "a3", "sent", ""),
        ("2030-01-05 10:00", "timed", "send", "b1", "sent", ""),
    ]
    # 12:00 UTC is 13:00 in Berlin: the next 09:30 there is tomorrow's.
    assert timeline(result, "bob")[0] == ("2030-01-02 08:30", "timed", "send", "a1", "sent", "")


async def test_an_invalid_customer_time_zone_falls_back_and_is_reported_once(sim_env, templates):
    rules = QUIET + "      - send a3\n"
    result = await run(
        rules,
        templates,
        [(day(0, 22), signup("ann", timezone="Mars/Olympus")[1])],
        until=timedelta(days=2),
        env=sim_env,
    )
    warnings = [a for a in result.actions if a["action"] == "warning"]
    assert [(w["reason"], w["detail"]) for w in warnings] == [
        (
            "invalid_timezone",
            "customer.timezone 'Mars/Olympus' is not an IANA time zone; using Europe/Berlin",
        )
    ]
    assert timeline(result)[0][2:] == ("defer", "a1", "2030-01-02T07:00", "quiet_hours")


async def test_a_deferral_survives_continue_as_new(sim_env, templates):
    # Events every 30 minutes while the send is held make the customer's workflow
    # continue as new several times (tiny history limit); the send goes out once, at 08:00.
    store = compile_store(QUIET, templates)
    events = [(day(0, 22), signup("ann")[1])] + [
        (day(0, 22.5 + i / 2), event("page.viewed", "ann")[1]) for i in range(12)
    ]
    result = await simulate(
        events,
        None,
        templates,
        START,
        timedelta(days=2),
        store=store,
        env=sim_env,
        history_limit=30,
    )
    assert timeline(result) == [
        ("2030-01-01 22:00", "promo", "defer", "a1", "2030-01-02T07:00", "quiet_hours"),
        ("2030-01-02 07:00", "promo", "send", "a1", "sent", ""),
        ("2030-01-02 11:00", "promo", "send", "a2", "sent", ""),
    ]
    assert len(result.emails) == 2


async def test_the_worker_log_says_why_an_email_was_not_sent(sim_env, templates, caplog):
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    await run(
        QUIET,
        templates,
        [(day(0, 22), signup("ann")[1]), (day(0, 23), event("customer.unsubscribed", "ann")[1])],
        until=timedelta(days=2),
        env=sim_env,
    )
    said = [
        r.getMessage().split(" ({")[0] for r in caplog.records if "journey promo" in r.getMessage()
    ]
    assert said == [
        "customer ann, journey promo: send a1 deferred: quiet_hours "
        "(quiet hours until 08:00 Europe/Berlin)",
        "customer ann, journey promo: send a1 suppressed: unsubscribed (the customer unsubscribed)",
        "customer ann, journey promo: send a2 suppressed: unsubscribed (the customer unsubscribed)",
    ]
