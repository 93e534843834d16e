"""Every step kind, and key / reentry / goal / when, on Temporal's time-skipping server with
the real email activity and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.workflows.harness import ends, event, run, sends, signup, write_templates

NAMES = ["welcome", "nudge", "thanks", "got-it", "reminder", "alert", "bye", "again"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return write_templates(
        tmp_path_factory.mktemp("templates"),
        NAMES,
        {
            "order-seen": "{% block subject %}order {{ event.order_id }} of "
            "{{ trigger.plan }}{% endblock %}",
            "offer": "{% block subject %}{{ discount }}% off, {{ customer.name }}{% endblock %}",
            "ticket": "{% block subject %}ticket {{ ticket.id }} ({{ label }}){% endblock %}",
        },
    )


async def test_send_wait_if_else_and_wait_for(sim_env, templates):
    rules = """
journeys:
  welcome:
    trigger: customer.signed_up
    steps:
      - send welcome
      - wait 2 days
      - if customer.orders_count == 0:
          - send nudge
        else:
          - send thanks
      - wait for review.posted within 5 days:
          received:
            - send got-it
          timeout:
            - send reminder
"""
    result = await run(
        rules,
        templates,
        [
            signup("ann", orders_count=0),
            signup("bob", orders_count=0),
            event("order.placed", "bob", 1, customer={"orders_count": 1}),
            event("review.posted", "ann", 3),
        ],
        env=sim_env,
    )
    assert sends(result, "ann") == [(0, "welcome"), (2, "nudge"), (3, "got-it")]
    assert sends(result, "bob") == [(0, "welcome"), (2, "thanks"), (7, "reminder")]
    assert ends(result) == [("welcome", "completed"), ("welcome", "completed")]
    subjects = [a["subject"] for a in result.public_actions() if a["action"] == "send"]
    assert "welcome for Ann" in subjects
    # Every send went through SMTP to the capturing server.
    assert len(result.emails) == 6


async def test_wait_for_where_filter_and_event_in_templates(sim_env, templates):
    rules = """
journeys:
  delivery:
    trigger: subscription.started
    steps:
      - wait for order.placed where event.order_id == "o-2" within 3 days:
          received:
            - set seen = event.order_id
            - send order-seen
"""
    result = await run(
        rules,
        templates,
        [
            event("subscription.started", customer={"email": "c@x.test"}, data={"plan": "gold"}),
            event("order.placed", day=0.5, data={"order_id": "o-1"}),  # filtered out
            event("order.placed", day=1, data={"order_id": "o-2"}),
        ],
        env=sim_env,
    )
    assert sends(result) == [(1, "order-seen")]
    assert result.public_actions()[0]["subject"] == "order o-2 of gold"


async def test_only_events_after_the_wait_starts_count(sim_env, templates):
    rules = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait 1 day
      - wait for review.posted within 2 days:
          received:
            - send got-it
          timeout:
            - send reminder
"""
    result = await run(rules, templates, [signup(), event("review.posted", day=0.5)], env=sim_env)
    assert sends(result) == [(3, "reminder")]


async def test_goal_ends_the_journey_whenever_its_event_arrives(sim_env, templates):
    rules = """
journeys:
  welcome:
    trigger: customer.signed_up
    goal: order.placed
    steps:
      - send welcome
      - wait 2 days
      - send nudge
      - wait 5 days
      - send reminder
"""
    result = await run(
        rules,
        templates,
        [signup("ann"), signup("bob"), event("order.placed", "bob", 3)],
        env=sim_env,
    )
    assert sends(result, "ann") == [(0, "welcome"), (2, "nudge"), (7, "reminder")]
    assert sends(result, "bob") == [(0, "welcome"), (2, "nudge")]
    assert sorted(ends(result)) == [("welcome", "completed"), ("welcome", "goal")]


async def test_when_sees_the_profile_updated_by_its_trigger(sim_env, templates):
    rules = """
journeys:
  optin:
    trigger: customer.signed_up
    when: customer.marketing_opt_in and customer.country in ["DE", "FR"]
    steps:
      - send welcome
"""
    result = await run(
        rules,
        templates,
        [
            signup("ann", marketing_opt_in=True, country="DE"),
            signup("bob", marketing_opt_in=False, country="DE"),
            signup("cid", marketing_opt_in=True, country="US"),
            signup("dee"),  # no opt-in field at all: null, so false
        ],
        env=sim_env,
    )
    assert [a["customer_id"] for a in result.public_actions() if a["action"] == "send"] == ["ann"]


async def test_key_gives_one_instance_per_key_and_reentry_always(sim_env, templates):
    rules = """
journeys:
  complaint:
    trigger: complaint.opened
    key: trigger.complaint_id
    reentry: always
    steps:
      - send got-it with ref=trigger.complaint_id
      - wait 1 day
      - send bye
"""
    result = await run(
        rules,
        templates,
        [
            signup("ann"),
            event("complaint.opened", "ann", 0, data={"complaint_id": "k1"}),
            event("complaint.opened", "ann", 0.25, data={"complaint_id": "k2"}),
            # k1 again while k1 is active: no second instance
            event("complaint.opened", "ann", 0.5, data={"complaint_id": "k1"}),
            # k1 again after it ended: reentry always starts it anew
            event("complaint.opened", "ann", 2, data={"complaint_id": "k1"}),
        ],
        env=sim_env,
    )
    assert sends(result) == [
        (0, "got-it"),
        (0.25, "got-it"),
        (1, "bye"),
        (1.25, "bye"),
        (2, "got-it"),
        (3, "bye"),
    ]


async def test_reentry_never_and_after(sim_env, templates):
    rules = """
journeys:
  once:
    trigger: visit
    steps:
      - send welcome
  monthly:
    trigger: visit
    reentry: after 30 days
    steps:
      - send again
"""
    visits = [event("visit", day=d, customer={"email": "c1@example.test"}) for d in (0, 10, 31)]
    result = await run(rules, templates, visits, env=sim_env)
    # Both journeys send at the same instant; their relative order is not defined.
    assert sorted(sends(result)) == [(0, "again"), (0, "welcome"), (31, "again")]


async def test_call_set_and_template_variables(sim_env, templates, tmp_path, monkeypatch):
    rules = """
journeys:
  escalate:
    trigger: complaint.opened
    steps:
      - call create_ticket(priority="urgent", complaint=trigger.complaint_id) as ticket
      - set customer.open_ticket = ticket.id
      - set label = "P1-" + upper(ticket.priority)
      - send ticket
      - if customer.open_ticket != null:
          - send offer with discount=10 * 2
"""
    result = await run(
        rules,
        templates,
        [signup("ann"), event("complaint.opened", "ann", 1, data={"complaint_id": "k9"})],
        env=sim_env,
    )
    actions = result.public_actions()
    assert [a["action"] for a in actions] == ["call", "send", "send", "end"]
    assert actions[0]["activity"] == "create_ticket"
    assert actions[1]["subject"] == "ticket T-000001 (P1-URGENT)"
    assert actions[2]["subject"] == "20% off, Ann"


async def test_exit_and_notify(sim_env, templates):
    rules = """
settings:
  teams:
    support: help@acme.test
journeys:
  j:
    trigger: complaint.opened
    steps:
      - notify support with alert
      - if trigger.severity == "low":
          - exit
      - send bye
"""
    result = await run(
        rules,
        templates,
        [
            event(
                "complaint.opened",
                "ann",
                customer={"email": "ann@x.test"},
                data={"severity": "low"},
            ),
            event(
                "complaint.opened",
                "bob",
                customer={"email": "bob@x.test"},
                data={"severity": "high"},
            ),
        ],
        env=sim_env,
    )
    notes = [a for a in result.public_actions() if a["action"] == "notify"]
    assert [n["to"] for n in notes] == ["help@acme.test", "help@acme.test"]
    assert sorted(ends(result)) == [("j", "completed"), ("j", "exit")]
    assert sends(result, "bob") == [(0, "alert"), (0, "bye")]


async def test_duplicate_event_ids_are_processed_once(sim_env, templates):
    rules = """
journeys:
  j:
    trigger: ping
    reentry: always
    steps:
      - send welcome
"""
    ping = {"customer": {"email": "c1@example.test"}, "id": "evt-1"}
    result = await run(
        rules, templates, [event("ping", **ping), event("ping", day=1, **ping)], env=sim_env
    )
    assert sends(result) == [(0, "welcome")]


async def test_a_template_error_fails_only_that_journey(sim_env, templates):
    broken = write_templates(
        templates.parent / "broken",
        ["welcome"],
        {
            "oops": "{% block subject %}hi{% endblock %}\n<p>{{ customer.nmae }}</p>",
        },
    )
    rules = """
journeys:
  bad:
    trigger: customer.signed_up
    steps:
      - send oops
      - send welcome
  good:
    trigger: customer.signed_up
    steps:
      - wait 1 day
      - send welcome
"""
    result = await run(rules, broken, [signup("ann")], env=sim_env)
    failed = [a for a in result.public_actions() if a.get("reason") == "failed"]
    assert len(failed) == 1 and failed[0]["journey"] == "bad"
    assert "oops.html.j2:2" in failed[0]["error"] and "nmae" in failed[0]["error"]
    assert sends(result) == [(1, "welcome")]


async def test_until_stops_the_run(sim_env, templates):
    rules = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait 10 days
      - send welcome
"""
    result = await run(rules, templates, [signup()], until=timedelta(days=5), env=sim_env)
    assert sends(result) == []


async def test_expressions_and_email_dates_see_simulated_time(sim_env, templates):
    rules = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - if days_since(customer.first_seen) > 7:
          - send welcome
        else:
          - send nudge
"""
    # START is 2030-01-01: only a clock moved to simulated time puts this 12 days ago.
    result = await run(
        rules, templates, [signup("ann", first_seen="2029-12-20T00:00:00Z")], env=sim_env
    )
    assert sends(result) == [(0, "welcome")]
    (email,) = result.emails
    assert email.message["Date"].datetime.year == 2030
