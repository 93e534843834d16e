"""``lifecycle why`` (CONTRACT.md §8) on real status output: scenarios on Temporal's
time-skipping server, through the simulator with the real activities and SMTP path, that
produce each reason a journey did or did not start (its ``when`` with the values of its
operands, re-entry never / after, an active key, the limit of journeys in flight, the
holdout, a trigger that is not an event) and each reason a message was sent, deferred,
held, suppressed or not sent; the formatted explanation is pinned in full.

Times are compared to the minute: the test server's clock also moves with real time while
activities run, so a simulated time can lag by a second or two."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from engine.cli.why import explain, format_why
from engine.tools.simulator import simulate
from tests.workflows.harness import START, compile_store, event, signup, write_templates

NAMES = ["w1", "offer", "c1", "p1", "p2", "f1", "r1", "l1", "wb"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return write_templates(tmp_path_factory.mktemp("templates"), NAMES)


def why(status: dict, journey: str | None = None) -> str:
    """The explanation as ``lifecycle why`` prints it, times to the minute."""
    text = format_why(explain(status, journey))
    return re.sub(r"(\d{4}-\d\d-\d\dT\d\d:\d\d):\d\dZ", r"\1Z", text)


def why_json(status: dict, journey: str | None = None) -> str:
    """``lifecycle why --json``, times to the minute."""
    text = json.dumps(explain(status, journey))
    return re.sub(r"(\d{4}-\d\d-\d\dT\d\d:\d\d):\d\dZ", r"\1Z", text)


async def statuses(rules: str, templates, events, until: timedelta, env, **kw) -> dict:
    store = compile_store(rules, templates)
    result = await simulate(
        events, None, templates, START, until, store=store, env=env, keep_status=True, **kw
    )
    return result.statuses


ENTRY = """
journeys:
  welcome:
    trigger: customer.signed_up
    when: customer.marketing_opt_in
    steps:
      - send w1
  vip-offer:
    trigger: order.placed
    when: customer.plan == "gold" and trigger.total > 50
    reentry: after 30 days
    steps:
      - send offer
  complaint:
    trigger: complaint.opened
    key: trigger.complaint_id
    reentry: always
    steps:
      - wait 2 days
      - send c1
"""


@pytest.fixture(scope="module")
async def entry(sim_env, templates):
    complaints = [
        event("complaint.opened", "lim", 0, data={"complaint_id": f"k{n}"}) for n in range(11)
    ]
    pages = [event("page.viewed", "pat", 0.01 * n, id=f"p-{n}") for n in range(1, 52)]
    return await statuses(
        ENTRY,
        templates,
        [
            signup("vic", 0, marketing_opt_in=False),
            event(
                "order.placed", "vic", 1, id="o-1", customer={"plan": "silver"}, data={"total": 80}
            ),
            event("order.placed", "vic", 1.5, id="o-1"),
            event("page.viewed", "vic", 2),
            signup("ann", 0, marketing_opt_in=True),
            event("complaint.opened", "ann", 0.25, data={"complaint_id": "k1"}),
            signup("ann", 0.5, marketing_opt_in=True),
            event("order.placed", "ann", 1, customer={"plan": "gold"}, data={"total": 80}),
            event("complaint.opened", "ann", 1, data={"complaint_id": "k1"}),
            event("order.placed", "ann", 2, data={"total": 99}),
            *complaints,
            signup("pat", 0, marketing_opt_in=True),
            *pages,
        ],
        timedelta(days=3),
        sim_env,
    )


async def test_a_customer_who_was_never_sent_the_offer(entry):
    # vic's profile says silver: the offer's `when` was false, with the values it read
    assert (
        why(entry["vic"]) + "\n"
        == """\
why: customer vic
events and triggers:
  2030-01-01T00:00Z  customer.signed_up
    welcome: not started: when customer.marketing_opt_in was false: customer.marketing_opt_in = false
  2030-01-02T00:00Z  order.placed (id o-1)
    vip-offer: not started: when customer.plan == "gold" and trigger.total > 50 was false: customer.plan = "silver", trigger.total = 80
  2030-01-02T12:00Z  order.placed (id o-1)
    dropped: an event with this id was taken before
  2030-01-03T00:00Z  page.viewed
    starts no journey
messages:
  none
"""
    )
    assert (
        why(entry["vic"], "vip-offer") + "\n"
        == """\
why: customer vic, journey vip-offer
events and triggers:
  2030-01-02T00:00Z  order.placed (id o-1)
    vip-offer: not started: when customer.plan == "gold" and trigger.total > 50 was false: customer.plan = "silver", trigger.total = 80
messages:
  none from vip-offer
"""
    )


async def test_re_entry_never_and_after_and_an_active_key(entry):
    assert (
        why(entry["ann"]) + "\n"
        == """\
why: customer ann
events and triggers:
  2030-01-01T00:00Z  customer.signed_up
    welcome: started (welcome:1); ended 2030-01-01T00:00Z (completed); when customer.marketing_opt_in was true: customer.marketing_opt_in = true
  2030-01-01T06:00Z  complaint.opened
    complaint: started for key "k1" (complaint:k1:2); ended 2030-01-03T06:00Z (completed)
  2030-01-01T12:00Z  customer.signed_up
    welcome: not started: it started before (at 2030-01-01T00:00Z) and its re-entry is never
  2030-01-02T00:00Z  order.placed
    vip-offer: started (vip-offer:3); ended 2030-01-02T00:00Z (completed); when customer.plan == "gold" and trigger.total > 50 was true: customer.plan = "gold", trigger.total = 80
  2030-01-02T00:00Z  complaint.opened
    complaint: not started: it is already active for key "k1" (complaint:k1:2)
  2030-01-03T00:00Z  order.placed
    vip-offer: not started: it started before; re-entry lets it start again from 2030-02-01T00:00Z
messages:
  2030-01-01T00:00Z  welcome  send w1: sent to ann@example.test: "w1 for Ann"
  2030-01-02T00:00Z  vip-offer  send offer: sent to ann@example.test: "offer for Ann"
  2030-01-03T06:00Z  complaint  send c1: sent to ann@example.test: "c1 for Ann"
"""
    )
    assert (
        why(entry["ann"], "vip-offer") + "\n"
        == """\
why: customer ann, journey vip-offer
events and triggers:
  2030-01-02T00:00Z  order.placed
    vip-offer: started (vip-offer:3); ended 2030-01-02T00:00Z (completed); when customer.plan == "gold" and trigger.total > 50 was true: customer.plan = "gold", trigger.total = 80
  2030-01-03T00:00Z  order.placed
    vip-offer: not started: it started before; re-entry lets it start again from 2030-02-01T00:00Z
messages:
  2030-01-02T00:00Z  vip-offer  send offer: sent to ann@example.test: "offer for Ann"
"""
    )


async def test_the_limit_of_journeys_in_flight(entry):
    started = "".join(
        f"  2030-01-01T00:00Z  complaint.opened\n"
        f'    complaint: started for key "k{n}" (complaint:k{n}:{n + 1});'
        " ended 2030-01-03T00:00Z (completed)\n"
        for n in range(10)
    )
    unsent = "  2030-01-03T00:00Z  complaint  send c1: not sent: customer has no email address\n"
    assert why(entry["lim"]) + "\n" == (
        "why: customer lim\n"
        "events and triggers:\n" + started + "  2030-01-01T00:00Z  complaint.opened\n"
        "    complaint: not started: 10 journeys are in flight for the customer (active_limit)\n"
        "messages:\n" + unsent * 10
    )
    assert (
        why(entry["lim"], "vip-offer") + "\n"
        == """\
why: customer lim, journey vip-offer
events and triggers:
  none of the events or triggers kept could start vip-offer
messages:
  none from vip-offer
"""
    )


async def test_it_says_when_older_events_are_no_longer_kept(entry):
    lines = why(entry["pat"]).split("\n")
    assert lines[:6] == [
        "why: customer pat",
        "events and triggers (older ones are not kept: showing the last 50 of 52 events):",
        "  2030-01-01T00:00Z  customer.signed_up (event #1, no longer kept)",
        "    welcome: started (welcome:1); ended 2030-01-01T00:00Z (completed);"
        " when customer.marketing_opt_in was true: customer.marketing_opt_in = true",
        "  2030-01-01T00:28Z  page.viewed (id p-2)",
        "    starts no journey",
    ]
    assert lines[-4:] == [
        "  2030-01-01T12:14Z  page.viewed (id p-51)",
        "    starts no journey",
        "messages:",
        '  2030-01-01T00:00Z  welcome  send w1: sent to pat@example.test: "w1 for Pat"',
    ]
    # events #3..#52 (p-2..p-51) are kept; the signup (#1) is known by its decision only
    assert lines.count("    starts no journey") == 50


POLICY = """
settings:
  quiet_hours: "21:00-08:00"
  frequency_cap: "1 per 1 day"
  consent: customer.marketing_opt_in
journeys:
  promo:
    trigger: customer.signed_up
    steps:
      - send p1
      - send p2
  flash:
    trigger: flash.sale
    when_capped: skip
    steps:
      - send f1
  receipt:
    class: transactional
    trigger: order.placed
    reentry: always
    steps:
      - send r1
"""


@pytest.fixture(scope="module")
async def policy(sim_env, templates):
    def reject(rcpt: str):
        return "550 5.1.1 no such user" if rcpt.startswith("zed@") else None

    return await statuses(
        POLICY,
        templates,
        [
            signup("ann", 22 / 24, marketing_opt_in=True),
            signup("bob", 0.5, marketing_opt_in=True),
            event("flash.sale", "bob", 0.6),
            signup("cat", 0.5, marketing_opt_in=True),
            event("customer.unsubscribed", "cat", 0.55),
            event("flash.sale", "cat", 0.6),
            event("order.placed", "cat", 0.7),
            signup("dee", 0.5, marketing_opt_in=False),
            event("order.placed", "zed", 0.5, customer={"email": "zed@example.test"}),
            event("order.placed", "zed", 0.6),
            event("order.placed", "eve", 0.5),
        ],
        timedelta(days=1.75),
        sim_env,
        smtp_reject=reject,
    )


async def test_quiet_hours_then_the_cap_defer_and_a_send_still_held(policy):
    assert (
        why(policy["ann"]) + "\n"
        == """\
why: customer ann
events and triggers:
  2030-01-01T22:00Z  customer.signed_up
    promo: started (promo:1); still running
messages:
  2030-01-01T22:00Z  promo  send p1: deferred until 2030-01-02T08:00Z (quiet_hours): quiet hours until 08:00 UTC
  2030-01-02T08:00Z  promo  send p1: sent to ann@example.test: "p1 for Ann"
  2030-01-02T08:00Z  promo  send p2: deferred until 2030-01-03T08:00Z (capped): frequency cap: 1 sent since 2030-01-01T08:00Z; still held
"""
    )


async def test_over_the_cap_wait_defers_and_skip_suppresses(policy):
    assert (
        why(policy["bob"]) + "\n"
        == """\
why: customer bob
events and triggers:
  2030-01-01T12:00Z  customer.signed_up
    promo: started (promo:1); ended 2030-01-02T12:00Z (completed)
  2030-01-01T14:24Z  flash.sale
    flash: started (flash:2); ended 2030-01-01T14:24Z (completed)
messages:
  2030-01-01T12:00Z  promo  send p1: sent to bob@example.test: "p1 for Bob"
  2030-01-01T12:00Z  promo  send p2: deferred until 2030-01-02T12:00Z (capped): frequency cap: 1 sent since 2029-12-31T12:00Z
  2030-01-01T14:24Z  flash  send f1: suppressed (capped): frequency cap: 1 sent since 2029-12-31T14:24Z
  2030-01-02T12:00Z  promo  send p2: sent to bob@example.test: "p2 for Bob"
"""
    )


async def test_an_unsubscribe_suppresses_marketing_but_not_a_receipt(policy):
    assert (
        why(policy["cat"]) + "\n"
        == """\
why: customer cat
events and triggers:
  2030-01-01T12:00Z  customer.signed_up
    promo: started (promo:1); ended 2030-01-01T13:12Z (completed)
  2030-01-01T13:12Z  customer.unsubscribed
    starts no journey
  2030-01-01T14:24Z  flash.sale
    flash: started (flash:2); ended 2030-01-01T14:24Z (completed)
  2030-01-01T16:48Z  order.placed
    receipt: started (receipt:3); ended 2030-01-01T16:48Z (completed)
messages:
  2030-01-01T12:00Z  promo  send p1: sent to cat@example.test: "p1 for Cat"
  2030-01-01T12:00Z  promo  send p2: deferred until 2030-01-02T12:00Z (capped): frequency cap: 1 sent since 2029-12-31T12:00Z
  2030-01-01T13:12Z  promo  send p2: suppressed (unsubscribed): the customer unsubscribed
  2030-01-01T14:24Z  flash  send f1: suppressed (unsubscribed): the customer unsubscribed
  2030-01-01T16:48Z  receipt  send r1: sent to cat@example.test: "r1 for Cat"
"""
    )


async def test_no_consent_suppresses(policy):
    assert (
        why(policy["dee"]) + "\n"
        == """\
why: customer dee
events and triggers:
  2030-01-01T12:00Z  customer.signed_up
    promo: started (promo:1); ended 2030-01-01T12:00Z (completed)
messages:
  2030-01-01T12:00Z  promo  send p1: suppressed (no_consent): settings.consent does not hold for the customer
  2030-01-01T12:00Z  promo  send p2: suppressed (no_consent): settings.consent does not hold for the customer
"""
    )


async def test_a_hard_bounce_then_the_suppressed_address(policy):
    assert (
        why(policy["zed"]) + "\n"
        == """\
why: customer zed
events and triggers:
  2030-01-01T12:00Z  order.placed
    receipt: started (receipt:1); ended 2030-01-01T12:00Z (completed)
  2030-01-01T14:24Z  order.placed
    receipt: started (receipt:2); ended 2030-01-01T14:24Z (completed)
messages:
  2030-01-01T12:00Z  receipt  send r1: bounced (a hard bounce: the address is suppressed from now on): 550 5.1.1 no such user
  2030-01-01T14:24Z  receipt  send r1: suppressed (bounced): zed@example.test is suppressed after a hard bounce
"""
    )


async def test_no_address_is_not_sent(policy):
    assert (
        why(policy["eve"]) + "\n"
        == """\
why: customer eve
events and triggers:
  2030-01-01T12:00Z  order.placed
    receipt: started (receipt:1); ended 2030-01-01T12:00Z (completed)
messages:
  2030-01-01T12:00Z  receipt  send r1: not sent: customer has no email address
"""
    )


TRIGGERS = """
journeys:
  winback:
    trigger: no order.placed for 3 days
    holdout: 50%
    steps:
      - send wb
"""


@pytest.fixture(scope="module")
async def triggers(sim_env, templates):
    # hugo is in winback's 50% holdout, hal is not (dsl.experiments.in_holdout)
    return await statuses(
        TRIGGERS,
        templates,
        [signup("hugo"), signup("hal")],
        timedelta(days=4),
        sim_env,
    )


async def test_a_trigger_that_is_not_an_event_and_the_holdout(triggers):
    assert (
        why(triggers["hugo"]) + "\n"
        == """\
why: customer hugo
events and triggers:
  2030-01-01T00:00Z  customer.signed_up
    starts no journey
  2030-01-04T00:00Z  trigger: no order.placed for 3 days
    winback: started (winback:1), in the holdout (50%): it is sent nothing; ended 2030-01-04T00:00Z (completed)
messages:
  2030-01-04T00:00Z  winback  send wb: suppressed (holdout): the customer is in the journey's holdout
"""
    )
    assert (
        why(triggers["hal"]) + "\n"
        == """\
why: customer hal
events and triggers:
  2030-01-01T00:00Z  customer.signed_up
    starts no journey
  2030-01-04T00:00Z  trigger: no order.placed for 3 days
    winback: started (winback:1), not in the holdout (50%); ended 2030-01-04T00:00Z (completed)
messages:
  2030-01-04T00:00Z  winback  send wb: sent to hal@example.test: "wb for Hal"
"""
    )


async def test_the_json_is_the_same_explanation_as_data(entry):
    report = json.loads(why_json(entry["vic"], "vip-offer"))
    assert {k: v for k, v in report.items() if k != "now"} == {
        "customer_id": "vic",
        "journey": "vip-offer",
        "events": {"kept": 4, "total": 4},
        "decisions": {"kept": 2, "total": 2},
        "journal": {"kept": 0, "total": 0},
        "entries": [
            {
                "at": "2030-01-02T00:00Z",
                "event": {
                    "n": 2,
                    "at": "2030-01-02T00:00Z",
                    "type": "order.placed",
                    "id": "o-1",
                },
                "trigger": "order.placed",
                "journeys": [
                    {
                        "journey": "vip-offer",
                        "outcome": "not_started",
                        "reason": "when",
                        "when": 'customer.plan == "gold" and trigger.total > 50',
                        "values": {"customer.plan": "silver", "trigger.total": 80},
                        "why": 'not started: when customer.plan == "gold" and trigger.total > 50'
                        ' was false: customer.plan = "silver", trigger.total = 80',
                    }
                ],
            }
        ],
        "messages": [],
    }
