"""The shipped content: every rules file compiles, every template renders, and the sample
events drive every shipped journey through the real workflows as designed.

In: rules/, templates/, samples/events.jsonl, samples/customer.json.
Out: failures naming the file, template or journey that broke.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dsl import ir
from engine.delivery.message import render_email
from engine.delivery.templates import available_templates, make_environment
from engine.runtime.plans import compile_content

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
TEMPLATES = ROOT / "templates"
EVENTS = ROOT / "samples" / "events.jsonl"
SAMPLE = json.loads((ROOT / "samples" / "customer.json").read_text())

JOURNEYS = {
    "welcome-series",
    "order-follow-up",
    "abandoned-cart",
    "complaint-handling",
    "cancellation-save",
    "win-back",
    "birthday",
}


@pytest.fixture(scope="module")
def plan() -> ir.Plan:
    result = compile_content(RULES, TEMPLATES)
    assert not result.problems, "\n".join(p.render() for p in result.problems)
    return result.plan


def _walk(steps: list[ir.Step], scope: frozenset[str], in_received: bool):
    """Yield (step, names in scope, inside a received branch) for every send/notify."""
    for step in steps:
        if isinstance(step, (ir.Send, ir.Notify)):
            yield step, scope, in_received
        elif isinstance(step, ir.Set) and step.target == "var":
            scope = scope | {step.name}
        elif isinstance(step, ir.Call) and step.bind:
            scope = scope | {step.bind}
        elif isinstance(step, ir.WaitFor):
            yield from _walk(step.received, scope, True)
            yield from _walk(step.timeout, scope, in_received)
        elif isinstance(step, ir.If):
            yield from _walk(step.then, scope, in_received)
            yield from _walk(step.else_, scope, in_received)


def _uses(plan: ir.Plan):
    for journey in plan.journeys.values():
        for step, scope, in_received in _walk(journey.steps, frozenset(), False):
            yield journey, step, scope, in_received


# --------------------------------------------------------------------------- rules


def test_rules_compile_cleanly_with_the_expected_journeys(plan):
    assert set(plan.journeys) == JOURNEYS
    assert plan.settings.sender == "Acme Shop <hello@acme.test>"
    assert set(plan.settings.teams) == {"support", "team-lead", "head-of-support"}
    # Unsubscribe links are the API's signed /u/{token} (public_url from the deployment's
    # LIFECYCLE_PUBLIC_URL); the shipped rules set no page of their own.
    assert plan.settings.unsubscribe_url == "" and plan.settings.public_url == ""


def test_keyed_journeys_and_reentry(plan):
    j = plan.journeys
    assert j["order-follow-up"].key.src == "trigger.order_id"
    assert j["abandoned-cart"].key.src == "trigger.cart_id"
    assert j["complaint-handling"].key.src == "trigger.complaint_id"
    for name in ("order-follow-up", "abandoned-cart", "complaint-handling"):
        assert j[name].reentry.mode == "always"
    assert j["welcome-series"].reentry.mode == "never"
    assert (j["win-back"].reentry.mode, j["win-back"].reentry.seconds) == ("after", 90 * 86400)
    assert j["welcome-series"].goal == "subscription.started"
    assert j["win-back"].goal == "subscription.renewed"


def test_every_template_is_used_and_every_used_template_exists(plan):
    used = {step.template for _, step, _, _ in _uses(plan)}
    assert used == set(available_templates(TEMPLATES))


# --------------------------------------------------------------------------- templates


@pytest.fixture(scope="module")
def env():
    return make_environment(TEMPLATES)


@pytest.mark.parametrize("name", available_templates(TEMPLATES))
def test_template_renders_with_the_preview_sample(env, name):
    email = render_email(env, name, SAMPLE)
    assert email.subject and "\n" not in email.subject
    assert "<html" in email.html and email.text
    assert SAMPLE["unsubscribe_url"] in email.html
    assert SAMPLE["unsubscribe_url"] in email.text


def test_each_use_renders_with_only_the_names_in_scope(env, plan):
    """A template sees `event` only in a received branch, journey variables only after
    they are set, and only the `with` arguments of that step: render each use so."""
    for journey, step, scope, in_received in _uses(plan):
        variables = {"customer": SAMPLE["customer"], "trigger": SAMPLE["trigger"]}
        if in_received:
            variables["event"] = SAMPLE["event"]
        variables.update({v: SAMPLE[v] for v in scope})
        variables.update({arg: SAMPLE[arg] for arg in step.args})
        team = isinstance(step, ir.Notify)
        variables["unsubscribe_url"] = "" if team else SAMPLE["unsubscribe_url"]
        where = f"{journey.name}: {step.kind} {step.template} at {step.origin}"
        email = render_email(env, step.template, variables)
        assert email.subject and email.html and email.text, where
        if team:
            assert "unsubscribe" not in email.html.lower(), where
            assert "unsubscribe" not in email.text.lower(), where
        else:
            assert 'href="' + SAMPLE["unsubscribe_url"] + '"' in email.html, where
            assert "Unsubscribe: " + SAMPLE["unsubscribe_url"] in email.text, where


def test_notifications_show_the_customer(env, plan):
    for _, step, _, _ in _uses(plan):
        if isinstance(step, ir.Notify):
            email = render_email(env, step.template, dict(SAMPLE, unsubscribe_url=""))
            assert SAMPLE["customer"]["email"] in email.text, step.template


# --------------------------------------------------------------------------- samples


def test_sample_events_are_well_formed(plan):
    lines = EVENTS.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    named = {t.event for j in plan.journeys.values() for t in j.triggers if t.kind == "event"}
    for e in events:
        assert set(e) <= {"id", "type", "customer_id", "at", "customer", "data"}, e
        assert e["at"].startswith("+"), e
    assert named <= {e["type"] for e in events}, "every trigger has a sample event"


# Offsets from the simulation start: (time, customer, journey, action, template or reason).
EXPECTED = [
    ("+0d00h", "c-ann", "welcome-series", "send", "welcome"),
    ("+0d02h", "c-bob", "welcome-series", "send", "welcome"),
    ("+2d00h", "c-ann", "welcome-series", "send", "first-order-thanks"),
    ("+2d02h", "c-bob", "welcome-series", "send", "first-order-nudge"),
    ("+3d05h", "c-erin", "abandoned-cart", "send", "cart-reminder"),
    ("+4d00h", "c-carla", "complaint-handling", "notify", "complaint-new"),
    ("+4d00h", "c-carla", "complaint-handling", "send", "complaint-received"),
    ("+4d00h", "c-dan", "order-follow-up", "send", "delivery-check-in"),
    ("+4d02h", "c-ann", "order-follow-up", "send", "delivery-check-in"),
    ("+4d04h", "c-carla", "complaint-handling", "notify", "complaint-overdue"),
    ("+4d05h", "c-erin", "abandoned-cart", "end", "completed"),
    ("+4d05h", "c-erin", "abandoned-cart", "send", "cart-last-call"),
    ("+5d07h", "c-carla", "complaint-handling", "end", "completed"),
    ("+5d07h", "c-carla", "complaint-handling", "send", "complaint-survey"),
    ("+6d00h", "c-dan", "complaint-handling", "notify", "complaint-new"),
    ("+6d00h", "c-dan", "complaint-handling", "send", "complaint-received"),
    ("+6d04h", "c-dan", "complaint-handling", "notify", "complaint-overdue"),
    ("+7d00h", "c-dan", "complaint-handling", "call", "create_ticket"),
    ("+7d00h", "c-dan", "complaint-handling", "notify", "complaint-escalated"),
    ("+7d00h", "c-dan", "complaint-handling", "send", "complaint-update"),
    ("+7d02h", "c-bob", "welcome-series", "send", "first-order-last-call"),
    ("+8d00h", "c-dan", "order-follow-up", "send", "review-request"),
    ("+8d02h", "c-ann", "order-follow-up", "send", "review-request"),
    ("+8d06h", "c-dan", "order-follow-up", "notify", "low-review"),
    ("+8d06h", "c-dan", "order-follow-up", "send", "review-sorry"),
    ("+9d00h", "c-ann", "order-follow-up", "send", "review-thanks"),
    ("+9d00h", "c-ann", "welcome-series", "end", "completed"),
    ("+9d00h", "c-ann", "welcome-series", "send", "club-invite"),
    ("+10d00h", "c-erin", "cancellation-save", "notify", "vip-cancellation"),
    ("+10d00h", "c-erin", "cancellation-save", "send", "save-offer"),
    ("+11d01h", "c-fay", "order-follow-up", "end", "completed"),
    ("+11d01h", "c-fay", "order-follow-up", "notify", "delivery-overdue"),
    ("+11d01h", "c-fay", "order-follow-up", "send", "delivery-delayed"),
    ("+12d00h", "c-erin", "cancellation-save", "end", "completed"),
    ("+14d00h", "c-dan", "complaint-handling", "end", "completed"),
    ("+14d02h", "c-bob", "welcome-series", "end", "completed"),
    ("+15d00h", "c-erin", "win-back", "send", "winback-miss-you"),
    ("+22d00h", "c-erin", "win-back", "send", "winback-offer"),
    ("+22d06h", "c-dan", "order-follow-up", "end", "completed"),
    ("+23d00h", "c-ann", "order-follow-up", "end", "completed"),
    ("+23d00h", "c-ann", "order-follow-up", "send", "refill-suggestion"),
    ("+25d00h", "c-erin", "win-back", "end", "goal"),
    # ann's birthday (1990-03-20) at 09:00 UTC: every year on customer.birthday at 09:00
    ("+18d00h", "c-ann", "birthday", "send", "birthday"),
    ("+18d00h", "c-ann", "birthday", "end", "completed"),
    # no order.placed for 60 days: bob never ordered (60 days after his sign-up), ann's
    # last order was at +1d04h; erin is in the cancellation win-back (re-entry after 90 days)
    ("+60d02h", "c-bob", "win-back", "send", "winback-lapsed"),
    ("+60d02h", "c-bob", "win-back", "end", "exit"),
    ("+61d04h", "c-ann", "win-back", "send", "winback-lapsed"),
    ("+61d04h", "c-ann", "win-back", "end", "exit"),
]


async def test_sample_events_drive_every_journey_as_designed():
    from engine.tools.simulator import read_events, simulate

    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = await simulate(read_events(EVENTS, start), RULES, TEMPLATES, start)
    seen = []
    for a in result.public_actions():
        at = datetime.fromisoformat(a["at"].replace("Z", "+00:00")) - start
        hours = at.seconds // 3600
        what = a.get("template") or a.get("activity") or a.get("reason")
        seen.append((f"+{at.days}d{hours:02d}h", a["customer_id"], a["journey"], a["action"], what))
        assert "status" not in a and "error" not in a, a
    assert sorted(seen) == sorted(EXPECTED)
    # Every send and notify reached the SMTP server.
    assert len(result.emails) == sum(1 for s in EXPECTED if s[3] in ("send", "notify"))
