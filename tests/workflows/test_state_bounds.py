"""Issue 7, cases 2, 7 and 9: what an accepted event or a long journey can do to a
customer's state. Profile, variables, journeys in flight and the events carried through
continue-as-new stay bounded (workflows/state.py); simulations run to the end and report
every action; a start that an active journey blocks leaves a trace."""

from __future__ import annotations

from datetime import timedelta

from engine.cli.status import format_status
from tests.workflows.harness import ends, event, run, sends, signup, write_templates
from workflows.state import PROFILE_LIMIT_BYTES

SENDER = 'settings:\n  sender: "Acme <hello@acme.test>"\n'


async def test_profile_updates_past_the_bound_are_refused_and_the_customer_keeps_working(
    tmp_path,
):
    # 80 accepted events of ~30 KB each: 2.4 MB of profile, past Temporal's 2 MB payload
    # limit, if every update were merged (before: the send's input, which carries the
    # profile, failed the workflow task on every attempt; nothing was ever sent).
    templates = write_templates(tmp_path / "t", ["welcome"])
    rules = SENDER + "journeys:\n  j:\n    trigger: go\n    steps:\n      - send welcome\n"
    events = [
        event("profile.updated", "c1", day=i / 1000, customer={f"f{i}": "x" * 30_000})
        for i in range(80)
    ]
    events.append(event("go", "c1", day=1, customer={"email": "c1@example.test"}))
    result = await run(rules, templates, events, until=timedelta(days=2))
    assert [e.rcpt_tos for e in result.emails] == [["c1@example.test"]]
    refused = [a for a in result.actions if a["action"] == "refused"]
    # 64 KB hold two 30 KB fields; every later one is refused, and said so.
    assert len(refused) == 78
    assert refused[0]["reason"] == "profile_limit"
    assert str(PROFILE_LIMIT_BYTES) in refused[0]["detail"]


async def test_a_start_blocked_by_an_active_journey_leaves_a_trace(tmp_path):
    templates = write_templates(tmp_path / "t", ["welcome"])
    rules = (
        SENDER + "journeys:\n  j:\n    trigger: go\n    reentry: always\n    steps:\n"
        "      - send welcome\n      - wait 2 days\n"
    )
    events = [signup("c1"), event("go", "c1", day=0.5), event("go", "c1", day=1)]
    result = await run(rules, templates, events, until=timedelta(days=5))
    assert sends(result) == [(0.5, "welcome")]
    skipped = [a for a in result.actions if a["action"] == "not_started"]
    assert [(a["journey"], a["reason"], a["instance"]) for a in skipped] == [("j", "active", "j:1")]


async def test_a_journey_sending_twice_a_day_for_290_days_simulates_to_the_end(tmp_path):
    # Before: the simulation died on day ~148 with `RPCError: query deadline exceeded`
    # (a query reached the customer as it continued as new) and printed nothing.
    templates = write_templates(tmp_path / "t", ["t"])
    steps = "".join("      - send t\n      - wait 12 hours\n" for _ in range(580))
    rules = SENDER + "journeys:\n  daily:\n    trigger: customer.signed_up\n    steps:\n" + steps
    result = await run(rules, templates, [signup("c1")], until=timedelta(days=365))
    assert len(result.emails) == 580
    assert len(sends(result)) == 580
    assert ends(result) == [("daily", "completed")]


async def test_every_action_of_a_1000_event_customer_is_reported(tmp_path):
    # Before: the journal keeps the last 500 lines, so simulate --json showed 250 of the
    # 1,000 ends, with exit 0.
    templates = write_templates(tmp_path / "t", ["t"])
    rules = (
        SENDER + "journeys:\n  ping:\n    trigger: ping\n    reentry: always\n    steps:\n"
        "      - set customer.pings = 1\n"
    )
    events = [event("ping", "c1", day=i / 1440, id=f"e{i}") for i in range(1000)]
    result = await run(rules, templates, events, until=timedelta(days=2))
    assert len(ends(result)) == 1000
    starts = [a for a in result.actions if a["action"] == "start"]
    assert len(starts) == 1000
    assert [a["seq"] for a in result.actions] == sorted(a["seq"] for a in result.actions)


def test_status_says_when_it_shows_only_the_latest_actions():
    journal = [
        {"at": "2030-01-01T00:00:00Z", "journey": "j", "action": "end", "reason": "completed"}
    ] * 3
    status = {
        "customer_id": "c1",
        "events_processed": 900,
        "profile": {},
        "active": [],
        "journal": journal,
        "journal_total": 1800,
    }
    text = format_status(status, history=3)
    assert "recent actions (the latest 3 of 1800; --history N for more):" in text.splitlines()


async def test_a_customer_whose_workflow_task_fails_is_reported_as_failing(tmp_path):
    # Before: `status` said "no customer" for a customer that exists but is failing.
    import uuid

    from engine.runtime.client import diagnose
    from engine.tools.simulator import start_environment
    from tests.workflows.harness import compile_store
    from tests.workflows.test_durability import worker

    templates = write_templates(tmp_path / "t", ["welcome"])
    store = compile_store(SENDER + "journeys: {}\n", templates)
    env = await start_environment()
    try:
        async with worker(env, store, templates, tmp_path) as (queue, _sink):
            # A state the entity cannot load (as a broken deploy could leave one).
            bad = {"customer_id": "c-bad", "state": {"customer_id": "c-bad", "seq": "x" * 3}}
            bad["state"]["instances"] = {"i": {"id": "i"}}
            handle = await env.client.start_workflow(
                "CustomerWorkflow", bad, id="customer-c-bad", task_queue=queue
            )
            text = ""
            for _ in range(200):
                text = await diagnose(env.client, "c-bad")
                if "FAILING" in text:
                    break
                await env.sleep(0.1)
            assert text.startswith("customer 'c-bad' is FAILING: its workflow task failed")
            unknown = await diagnose(env.client, f"nobody-{uuid.uuid4().hex[:4]}")
            assert unknown.startswith("no customer")
            await handle.terminate()
    finally:
        await env.shutdown()


async def test_journeys_in_flight_are_bounded_and_a_refused_start_is_reported(tmp_path):
    from workflows.state import ACTIVE_LIMIT

    templates = write_templates(tmp_path / "t", ["welcome"])
    rules = (
        SENDER + "journeys:\n  j:\n    trigger: go\n    key: trigger.n\n    reentry: always\n"
        "    steps:\n      - wait 2 days\n"
    )
    events = [event("go", "c1", day=i / 100, data={"n": i}) for i in range(ACTIVE_LIMIT + 2)]
    result = await run(rules, templates, events, until=timedelta(days=5))
    assert len(ends(result)) == ACTIVE_LIMIT
    refused = [a for a in result.actions if a["action"] == "not_started"]
    assert [a["reason"] for a in refused] == ["active_limit", "active_limit"]
