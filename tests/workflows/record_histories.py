"""Record workflow histories for the replay test:
``python -m tests.workflows.record_histories LABEL`` (LABEL names the interpreter version,
e.g. the newest ``workflow.patched`` id).

Three scenarios, each run on the time-skipping server, each customer's every run saved to
tests/workflows/histories/:
- the shipped rules over the sample events (``samples/events.jsonl``);
- ``PATHS``: one journey that walks every interpreter path (send, notify, call, both
  branches of ``wait for``, ``if``, ``exit``, a goal, a plain timer) and a customer with a
  tiny history limit whose runs drain and continue as new while journeys wait;
- ``POLICY`` (``… LABEL policy``): the contact policy's paths (quiet hours, the cap,
  ``wait until``, consent, an unsubscribe, a transactional journey).
- ``TRIGGERS``: every trigger kind (inactivity, a yearly and a one-off date, entering, a
  list), ``exit_when`` while waiting and ``else if``, with a customer whose runs continue
  as new between a trigger's scheduling and its firing
  (``python -m tests.workflows.record_histories LABEL triggers``).
- ``EXPERIMENTS``: a ``split`` (both variants), a holdout (sends suppressed) and a goal
  inside and after ``goal_within``, with a customer whose runs continue as new inside a
  variant (``python -m tests.workflows.record_histories LABEL experiments``).
- ``SEARCH``: the journeys search attribute (search-attributes-v1), which only a server
  with it registered gets: run on the dev server (``temporal server start-dev`` in memory,
  real time, seconds-long waits), not the time-skipping one. Journeys start and end
  (naturally, by a goal, two at once), and a customer continues as new while one waits
  (``python -m tests.workflows.record_histories LABEL search``).
Commit new files when the interpreter changes; never overwrite old ones, since replaying
them is what proves a change is safe for journeys already in flight.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.tools.simulator import read_events, simulate

OUT = Path(__file__).parent / "histories"

PATHS_RULES = """
settings:
  sender: "Acme <hello@acme.test>"
  teams:
    support: support@acme.test
journeys:
  paths:
    trigger: go
    goal: order.placed
    steps:
      - send t
      - notify support with t
      - call create_ticket(priority="low", complaint="c-1") as ticket
      - set customer.ticket = ticket.id
      - wait for reply.sent within 1 day:
          received:
            - send t
          timeout:
            - send t
      - if customer.vip:
          - exit
      - wait 3 days
      - send t
  after:
    # started by the later page.viewed: commands after a journey ended, so that a command
    # added where it ended cannot go unseen by the replay
    trigger: page.viewed
    steps:
      - send t
"""

PATHS_EVENTS = [
    # received branch, then the timer, then completed
    ("+0s", "c-recv", "go", {}),
    ("+2h", "c-recv", "reply.sent", {}),
    # timeout branch, then exit
    ("+0s", "c-exit", "go", {"vip": True}),
    # the goal arrives during the timer
    ("+0s", "c-goal", "go", {}),
    ("+2d", "c-goal", "order.placed", {}),
    # an event after each journey has ended, starting `after` (see PATHS_RULES)
    ("+6d", "c-recv", "page.viewed", {}),
    ("+6d", "c-exit", "page.viewed", {}),
    ("+6d", "c-goal", "page.viewed", {}),
]
# A customer whose runs continue as new every few events (history_limit below), with
# journeys parked in a timer and in a `wait for` across the drains.
PATHS_CAN_EVENTS = [("+0s", "c-can", "go", {})] + [
    (f"+{h}h", "c-can", "page.viewed", {}) for h in range(1, 30, 2)
]


# The contact policy (contact-policy-v1): quiet hours, the cap deferring across two
# journeys, `wait until`, consent, an unsubscribe mid-journey and a transactional journey.
POLICY_RULES = """
settings:
  sender: "Acme <hello@acme.test>"
  timezone: "Europe/Berlin"
  quiet_hours: "21:00-08:00"
  frequency_cap: "2 per 1 day"
  consent: customer.marketing_opt_in
journeys:
  promo:
    trigger: go
    steps:
      - send t
      - send t
      - wait until 09:30
      - send t
      - wait 1 day
      - send t
  other:
    trigger: go
    when_capped: skip
    steps:
      - send t
  receipt:
    trigger: order.placed
    class: transactional
    steps:
      - wait until trigger.at
      - send t
"""

POLICY_EVENTS = [
    ("+22h", "c-pol", "go", {"marketing_opt_in": True}),
    ("+23h", "c-pol", "order.placed", {}),
    ("+2d", "c-pol", "customer.unsubscribed", {}),
]


TRIGGERS_RULES = """
settings:
  sender: "Acme <hello@acme.test>"
journeys:
  quiet:
    trigger: no order.placed for 5 days
    reentry: always
    steps:
      - send t
  birthday:
    trigger: every year on customer.birthday at 10:00
    steps:
      - send t
  renewal:
    trigger: on customer.renewal_at - 2 days
    key: customer.renewal_at
    steps:
      - send t
  vip:
    trigger:
      - vip.requested
      - entering customer.ltv > 500
    exit_when: customer.ltv < 100
    reentry: always
    steps:
      - if customer.ltv > 1000:
          - send t
        else if customer.ltv > 500:
          - wait 2 days
          - send t
        else:
          - exit
  bump:
    trigger: bonus.granted
    steps:
      - set customer.ltv = 2000
"""

TRIGGERS_EVENTS = [
    ("+0s", "c-trg", "customer.signed_up", {"birthday": "01-04", "renewal_at": "2030-01-06"}),
    ("+1d", "c-trg", "order.placed", {"ltv": 600}),  # entering; waits 2 days
    ("+2d", "c-trg", "order.placed", {"ltv": 50}),  # exit_when while it waits
    ("+3d", "c-trg", "plan.changed", {"renewal_at": "2030-01-08"}),  # moved
    ("+4d", "c-trg", "bonus.granted", {}),  # a step sets ltv: entering again
]
# Continue-as-new while the inactivity and birthday timers are scheduled.
TRIGGERS_CAN_EVENTS = [
    ("+0s", "c-trg-can", "customer.signed_up", {"birthday": "01-06"}),
] + [(f"+{h}h", "c-trg-can", "page.viewed", {}) for h in range(1, 30, 2)]


EXPERIMENTS_RULES = """
journeys:
  exp:
    trigger: go
    goal: order.placed
    goal_within: 2 days
    holdout: 30%
    steps:
      - split subject-test:
          control 50%:
            - send t
            - wait 1 day
          playful 50%:
            - wait 1 day
            - send t
      - wait 2 days
      - send t
"""
# c-x1 .. c-x8 land in both variants and in the holdout (dsl.experiments); c-x1 converts
# inside the window, c-x2 after it.
EXPERIMENTS_EVENTS = [("+0s", f"c-x{i}", "go", {}) for i in range(1, 9)] + [
    ("+1d1h", "c-x1", "order.placed", {}),
    ("+2d1h", "c-x2", "order.placed", {}),
]
EXPERIMENTS_CAN_EVENTS = [("+0s", "c-xcan", "go", {})] + [
    (f"+{h}h", "c-xcan", "page.viewed", {}) for h in range(1, 40, 2)
]


async def record_experiments(start: datetime) -> dict:
    rules, templates = paths_folders()
    (rules / "paths.yaml").write_text(EXPERIMENTS_RULES)
    histories = {}
    for rows, limit in ((EXPERIMENTS_EVENTS, None), (EXPERIMENTS_CAN_EVENTS, 40)):
        result = await simulate(
            _events(rows, start),
            rules,
            templates,
            start,
            timedelta(days=6),
            keep_histories=True,
            history_limit=limit,
        )
        histories.update(result.histories)
    return histories


async def record_triggers(start: datetime) -> dict:
    rules, templates = paths_folders()
    (rules / "paths.yaml").write_text(TRIGGERS_RULES)
    histories = {}
    for rows, limit in ((TRIGGERS_EVENTS, None), (TRIGGERS_CAN_EVENTS, 40)):
        result = await simulate(
            _events(rows, start),
            rules,
            templates,
            start,
            timedelta(days=10),
            keep_histories=True,
            history_limit=limit,
        )
        histories.update(result.histories)
    return histories


def _events(rows, start):
    lines = [
        json.dumps(
            {
                "id": f"{cid}-{i}",
                "type": etype,
                "customer_id": cid,
                "at": at,
                "customer": {"email": f"{cid}@example.test", **profile},
            }
        )
        for i, (at, cid, etype, profile) in enumerate(rows)
    ]
    path = Path(tempfile.mkdtemp()) / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return read_events(path, start)


def paths_folders() -> tuple[Path, Path]:
    root = Path(tempfile.mkdtemp(prefix="paths-"))
    (root / "rules").mkdir()
    (root / "rules" / "paths.yaml").write_text(PATHS_RULES)
    (root / "templates").mkdir()
    (root / "templates" / "t.html.j2").write_text(
        "<html><head><title>{% block subject %}Hello{% endblock %}</title></head>"
        "<body><p>Hi</p></body></html>\n"
    )
    return root / "rules", root / "templates"


async def record_paths(start: datetime) -> dict:
    rules, templates = paths_folders()
    histories = {}
    for rows, limit in ((PATHS_EVENTS, None), (PATHS_CAN_EVENTS, 40)):
        result = await simulate(
            _events(rows, start),
            rules,
            templates,
            start,
            timedelta(days=10),
            keep_histories=True,
            history_limit=limit,
        )
        histories.update(result.histories)
    return histories


async def record_policy(start: datetime) -> dict:
    rules, templates = paths_folders()
    (rules / "paths.yaml").write_text(POLICY_RULES)
    result = await simulate(
        _events(POLICY_EVENTS, start),
        rules,
        templates,
        start,
        timedelta(days=5),
        keep_histories=True,
    )
    return result.histories


SEARCH_RULES = """
settings:
  sender: "Acme <hello@acme.test>"
journeys:
  win-back:
    trigger: lapsed
    goal: back
    steps:
      - send t
      - wait 3 seconds
      - send t
  welcome:
    trigger: signed_up
    steps:
      - wait 1 second
      - send t
"""
# (customer, event type, wait for the journeys in flight to be these before the next)
SEARCH_EVENTS = [
    ("c-sa1", "lapsed", {"win-back"}),
    ("c-sa1", "signed_up", {"win-back", "welcome"}),  # two at once; welcome ends first
    ("c-sa2", "lapsed", {"win-back"}),
    ("c-sa2", "back", set()),  # ended by its goal
    ("c-sa1", "page.viewed", set()),  # after both ended naturally
]


async def record_search(start: datetime) -> dict:
    """SEARCH on a fresh in-memory dev server with the real worker; every run's history."""
    import uuid

    from engine.delivery.smtp import SmtpSettings
    from engine.runtime.assembly import assemble
    from engine.runtime.client import connect, get_status, send_event
    from engine.runtime.config import customer_workflow_id
    from engine.runtime.plans import PlanStore
    from engine.runtime.servers import EmbeddedTemporal
    from engine.tools.simulator import SimulationResult, _keep_histories
    from engine.tools.smtp_sink import SmtpSink, free_port
    from workflows.customer import CustomerWorkflow
    from workflows.state import CustomerInput

    rules, templates = paths_folders()
    (rules / "paths.yaml").write_text(SEARCH_RULES)
    work = Path(tempfile.mkdtemp(prefix="search-"))
    server = EmbeddedTemporal(
        work / "temporal", port=free_port(), ui_port=free_port(), headless=True, persist=False
    ).start()
    sink = SmtpSink().start()
    result = SimulationResult(start=start)
    try:
        client = await connect(server.address)
        store = PlanStore(rules, templates)
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false")
        queue = f"search-{uuid.uuid4().hex[:6]}"
        async with assemble(client, store, smtp, work / "ledger.sqlite", queue):
            assert store.search_attributes, "the dev server should have the attribute"

            async def settle(cid: str, journeys: set[str]) -> None:
                for _ in range(300):
                    st = await get_status(client, cid)
                    active = {a["journey"] for a in st["active"]}
                    if active == journeys and not st["inbox"]:
                        return
                    await asyncio.sleep(0.1)
                raise TimeoutError(f"{cid}: journeys {active}, expected {journeys}")

            for n, (cid, etype, journeys) in enumerate(SEARCH_EVENTS):
                ev = {"id": f"{cid}-{n}", "type": etype, "customer_id": cid, "data": {}}
                ev["customer"] = {"email": f"{cid}@example.test"}
                await send_event(client, ev, task_queue=queue)
                await settle(cid, journeys)
            await settle("c-sa1", set())
            # Continue-as-new while win-back waits (the new run starts with the value).
            cid = "c-sa-can"
            await client.start_workflow(
                CustomerWorkflow.run,
                CustomerInput(customer_id=cid, history_limit=40),
                id=customer_workflow_id(cid),
                task_queue=queue,
            )
            for n in range(12):
                ev = {"id": f"{cid}-{n}", "type": "lapsed" if n == 0 else "page.viewed"}
                ev.update(customer_id=cid, data={}, customer={"email": "can@example.test"})
                await send_event(client, ev, task_queue=queue)
            await settle(cid, set())
            for cid in ("c-sa1", "c-sa2", "c-sa-can"):
                await _keep_histories(client, customer_workflow_id(cid), result)
    finally:
        sink.stop()
        server.stop()
    return result.histories


async def main(label: str, scenario: str) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    if scenario == "paths":
        histories = await record_paths(start)
    elif scenario == "policy":
        histories = await record_policy(start)
    elif scenario == "triggers":
        histories = await record_triggers(start)
    elif scenario == "experiments":
        histories = await record_experiments(start)
    elif scenario == "search":
        histories = await record_search(start)
    else:
        events = read_events("samples/events.jsonl", start)
        result = await simulate(
            events, "rules", "templates", start, timedelta(days=40), keep_histories=True
        )
        histories = result.histories
    OUT.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    for wf_id, history in histories.items():
        path = OUT / f"{stamp}-{label}-{wf_id}.json"
        if not path.exists():
            path.write_text(json.dumps(history))
            print(f"saved {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0] if args else "current", args[1] if len(args) > 1 else "samples"))
