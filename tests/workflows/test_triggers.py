"""Triggers beyond events (CONTRACT.md §7) on the time-skipping server, with the real
workflows, activities and SMTP path: inactivity, yearly and one-off dates, entering, a
list of triggers, exit_when, else if, and continue-as-new between scheduling and firing.
Each timeline is pinned in full (day offsets from 2030-01-01T00:00Z, a Tuesday)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from engine.tools.simulator import simulate, start_environment
from tests.workflows.harness import (
    START,
    compile_store,
    ends,
    event,
    run,
    sends,
    signup,
    write_templates,
)


@pytest.fixture
def templates(tmp_path):
    return write_templates(
        tmp_path / "templates",
        ["t", "a", "b", "c", "vip", "mid", "low"],
        {"last": "{% block subject %}last {{ trigger.last_at }}{% endblock %}"},
    )


def subjects(result, customer_id=None):
    return [
        a["subject"]
        for a in result.public_actions()
        if a["action"] == "send" and customer_id in (None, a["customer_id"])
    ]


async def test_inactivity_is_rearmed_by_each_awaited_event_and_fires_once_per_spell(
    sim_env, templates
):
    rules = """
journeys:
  win-back:
    trigger: no order.placed for 10 days
    reentry: always
    steps:
      - send last
"""
    events = [
        signup("ann"),  # her first event: a spell starts
        event("order.placed", "ann", 3),
        event("order.placed", "ann", 8),  # the spell that ends on day 18
        event("page.viewed", "ann", 12),  # not an order: changes nothing
        event("order.placed", "ann", 30),  # a new spell, fired on day 40
        signup("bob"),  # never orders: 10 days after his first event
    ]
    result = await run(rules, templates, events, timedelta(days=60), env=sim_env)
    assert sends(result, "ann") == [(18.0, "last"), (40.0, "last")]
    assert sends(result, "bob") == [(10.0, "last")]
    assert subjects(result, "ann") == ["last 2030-01-09T00:00:00Z", "last 2030-01-31T00:00:00Z"]
    assert subjects(result, "bob") == ["last None"]


async def test_birthday_on_29_february_falls_on_28_february_in_local_time(sim_env, templates):
    rules = """
settings:
  timezone: America/New_York
journeys:
  birthday:
    trigger: every year on customer.birthday at 10:00
    reentry: always
    steps:
      - send t
"""
    events = [
        signup("ann", birthday="1992-02-29", timezone="Europe/Berlin"),
        signup("bob", birthday="07-04"),  # MM-DD; no zone of his own: settings.timezone
        signup("cat", birthday="not a date"),  # never scheduled, never fails
    ]
    result = await run(rules, templates, events, timedelta(days=430), env=sim_env)
    # 2030-02-28 10:00 Berlin = 09:00Z (day 58.375); 2031-02-28 too (day 423.375)
    assert sends(result, "ann") == [(58.375, "t"), (423.375, "t")]
    # 2030-07-04 10:00 New York (EDT) = 14:00Z: day 184 + 14/24
    assert sends(result, "bob") == [(184.583, "t")]
    assert sends(result, "cat") == []


async def test_a_date_moved_before_it_fires_moves_and_a_change_after_schedules_again(
    sim_env, templates
):
    rules = """
journeys:
  renewal-reminder:
    trigger: on customer.renewal_at - 7 days at 09:00
    key: customer.renewal_at
    steps:
      - send t
"""
    events = [
        signup("ann", renewal_at="2030-01-20"),  # due 01-13 09:00 (day 12.375) ...
        event("plan.changed", "ann", 5, customer={"renewal_at": "2030-01-25"}),  # ... moved
        event("plan.renewed", "ann", 20, customer={"renewal_at": "2030-02-10"}),  # again
        event("plan.changed", "ann", 40, customer={"renewal_at": "2030-01-02"}),  # past
        signup("bob", renewal_at="2030-03-01T18:30:00Z"),  # a date-time: its day at 09:00
    ]
    result = await run(rules, templates, events, timedelta(days=90), env=sim_env)
    assert sends(result, "ann") == [(17.375, "t"), (33.375, "t")]
    assert sends(result, "bob") == [(52.375, "t")]  # 2030-02-22 09:00Z


async def test_entering_fires_on_the_first_profile_and_on_a_later_change_not_while_true(
    sim_env, templates
):
    rules = """
journeys:
  vip:
    trigger: entering customer.lifetime_value > 500
    reentry: always
    steps:
      - send vip
  bump:
    trigger: bonus.granted
    steps:
      - set customer.lifetime_value = 1000
"""
    ltv = [(0, 100), (1, 300), (2, 700), (3, 800), (4, 200), (5, 900)]
    events = [signup("ann", lifetime_value=600)]
    events += [event("order.placed", "bob", d, customer={"lifetime_value": v}) for d, v in ltv]
    events += [signup("cat", day=0), event("bonus.granted", "cat", 1)]  # a step sets it
    result = await run(rules, templates, events, timedelta(days=10), env=sim_env)
    assert sends(result, "ann") == [(0.0, "vip")]
    assert sends(result, "bob") == [(2.0, "vip"), (5.0, "vip")]
    assert sends(result, "cat") == [(1.0, "vip")]


async def test_exit_when_ends_a_journey_while_it_waits(sim_env, templates):
    rules = """
journeys:
  onboarding:
    trigger: customer.signed_up
    exit_when: customer.orders_count > 0
    steps:
      - send a
      - wait 3 days
      - send b
"""
    events = [
        signup("ann"),
        event("order.placed", "ann", 1, customer={"orders_count": 1}),
        signup("bob"),  # never orders: the journey completes
    ]
    result = await run(rules, templates, events, timedelta(days=10), env=sim_env)
    assert sends(result, "ann") == [(0.0, "a")]
    assert sends(result, "bob") == [(0.0, "a"), (3.0, "b")]
    timeline = [(a["customer_id"], a["at"], a.get("reason")) for a in result.public_actions()]
    assert [t for t in timeline if t[2]] == [
        ("ann", "2030-01-02T00:00:00Z", "exit"),
        ("bob", "2030-01-04T00:00:00Z", "completed"),
    ]


async def test_a_list_of_triggers_any_of_which_starts_the_journey(sim_env, templates):
    rules = """
journeys:
  nudge:
    trigger:
      - cart.abandoned
      - no order.placed for 5 days
    reentry: always
    steps:
      - send t
"""
    events = [event("cart.abandoned", "ann", 0), event("cart.abandoned", "ann", 2)]
    result = await run(rules, templates, events, timedelta(days=20), env=sim_env)
    # two carts; then 5 days after her first event (no order ever), once
    assert sends(result, "ann") == [(0.0, "t"), (2.0, "t"), (5.0, "t")]
    assert ends(result) == [("nudge", "completed")] * 3


async def test_else_if_runs_the_first_branch_that_holds(sim_env, templates):
    rules = """
journeys:
  tiers:
    trigger: customer.signed_up
    steps:
      - if customer.ltv > 1000:
          - send vip
        else if customer.ltv > 100:
          - send mid
        else if customer.ltv > 0:
          - send low
        else:
          - send t
"""
    events = [
        signup("ann", ltv=5000),
        signup("bob", ltv=500),
        signup("cat", ltv=50),
        signup("dan"),
    ]
    result = await run(rules, templates, events, timedelta(days=1), env=sim_env)
    got = {
        a["customer_id"]: a["template"] for a in result.public_actions() if a["action"] == "send"
    }
    assert got == {"ann": "vip", "bob": "mid", "cat": "low", "dan": "t"}


async def test_a_trigger_scheduled_before_continue_as_new_fires_after_it(sim_env, templates):
    rules = """
journeys:
  win-back:
    trigger: no order.placed for 10 days
    steps:
      - send t
"""
    store = compile_store(rules, templates)
    # On the time-skipping server a run sometimes does not get to continue as new within
    # the simulation (a workflow task left hanging while the simulator queries it, seen
    # also before the trigger code: FINDINGS.md); the scenario needs one that did, so it
    # is tried with up to three customers. Every try must fire the trigger on day 11.
    for cid in ("ann", "ann-2", "ann-3"):
        events = [event("order.placed", cid, 1)]
        # 45 signals are 45 history events at least, however they are batched into
        # workflow tasks: well past the limit of 30 (30 signals were not always enough).
        events += [event("page.viewed", cid, 2 + h / 24) for h in range(45)]
        result = await simulate(
            events,
            None,
            templates,
            START,
            timedelta(days=20),
            store=store,
            env=sim_env,
            keep_histories=True,
            history_limit=30,
        )
        assert sends(result, cid) == [(11.0, "t")]
        runs = [k for k in result.histories if k.startswith(f"customer-{cid}")]
        if len(runs) >= 2:
            break  # it continued as new between scheduling and firing
    assert len(runs) >= 2, runs


async def test_status_shows_scheduled_triggers_and_they_fire_after_a_worker_restart(
    templates, tmp_path
):

    rules = """
journeys:
  birthday:
    trigger: every year on customer.birthday at 10:00
    steps:
      - send t
  win-back:
    trigger: no order.placed for 60 days
    steps:
      - send t
"""
    store = compile_store(rules, templates)
    env = await start_environment()  # its own: the simulations leave the shared one busy
    try:
        await _status_and_restart(env, store, templates, tmp_path)
    finally:
        await env.shutdown()


async def _status_and_restart(env, store, templates, tmp_path):
    from engine.runtime.client import send_event
    from engine.runtime.config import customer_workflow_id
    from tests.workflows.harness import until

    now = await env.get_current_time()
    birthday = (now + timedelta(days=20)).strftime("%m-%d")
    profile = {"email": "ann@example.test", "birthday": birthday, "timezone": "Europe/Berlin"}
    handle = env.client.get_workflow_handle(customer_workflow_id("ann-status"))

    async def processed():
        desc = (await handle.describe()).raw_description
        return (
            desc.HasField("pending_workflow_task") is False
            and desc.workflow_execution_info.history_length > 3
        )

    # The first worker keeps no workflow cache, hence no sticky queue: otherwise the
    # birthday's task can wait on the dead worker's sticky queue, which the test server
    # only gives up on when its (skipped) clock passes the sticky timeout (this failed in
    # full-suite runs). The second worker replays the history from scratch either way.
    queue = f"q-{uuid.uuid4().hex[:6]}"
    async with worker_on(env, store, templates, tmp_path, queue, cached=0):
        ev = {"type": "page.viewed", "customer_id": "ann-status", "customer": profile, "data": {}}
        await send_event(env.client, ev, task_queue=queue)
        await until(processed, timeout=60)
    # A new worker (no cached state: it replays the history) serves the customer when the
    # birthday comes. (The test server does not skip time while a task waits for a worker,
    # so the new one starts first. No queries before the sleep: one can leave the test
    # server's time skipping locked.)
    async with worker_on(env, store, templates, tmp_path, queue) as sink:
        await _sleep(env, timedelta(days=21))
        await until(lambda: len(sink.messages) >= 1, timeout=60)
        assert [m.message["Subject"] for m in sink.messages] == ["t for you"]
        status = await handle.query("status")
    got = status["scheduled"]
    assert [s["trigger"] for s in got] == [
        "no order.placed for 60 days",
        "every year on customer.birthday at 10:00",
    ]
    # next year's birthday, shown in her own time zone
    this_one = now + timedelta(days=20)
    assert got[1]["local"] == (
        f"birthday: {this_one.day} {this_one:%b} {this_one.year + 1} 10:00 Europe/Berlin"
    )
    assert got[0]["local"].startswith("no order.placed for 60 days: ")
    await handle.terminate(reason="test over")


async def _sleep(env, delta: timedelta) -> None:
    """``env.sleep``, tolerating its RPC deadline on a loaded machine: the skip was made
    (the server moved on), only the answer came too late; release the lock it left."""
    from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
    from temporalio.service import RPCError

    start = await env.get_current_time()
    try:
        await env.sleep(delta)
    except RPCError:
        try:
            await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        except RPCError:
            pass
        if await env.get_current_time() - start < delta:
            await env.sleep(delta - (await env.get_current_time() - start))


def worker_on(env, store, templates, tmp_path, queue, cached: int | None = None):
    """The real worker on a given task queue (a restarted worker); ``cached``: its
    workflow cache size (0: no cache, no sticky queue)."""
    from contextlib import asynccontextmanager

    from engine.delivery.smtp import SmtpSettings
    from engine.runtime.assembly import assemble
    from engine.runtime.settings import Settings
    from engine.tools.smtp_sink import SmtpSink

    settings = Settings(data_dir=str(tmp_path))
    if cached is not None:
        settings = Settings(data_dir=str(tmp_path), max_cached_workflows=cached)

    @asynccontextmanager
    async def run():
        sink = SmtpSink().start()
        try:
            async with assemble(
                env.client,
                store,
                SmtpSettings(host="127.0.0.1", port=sink.port),
                tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.sqlite",
                queue,
                templates_dir=templates,
                settings=settings,
            ):
                yield sink
        finally:
            sink.stop()

    return run()
