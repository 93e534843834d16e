"""The contact policy on the real Temporal dev server (CONTRACT.md §6): a send held by
quiet hours shows in `lifecycle status` as waiting, until when and why, and an unsubscribe
event sent while it is held stops it (the journey goes on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.cli.status import format_status
from tests.e2e.conftest import event, in_process_worker, new_customer, status, wait_end, wait_until
from tests.workflows.harness import compile_store, write_templates

RULES = """
settings:
  timezone: "UTC"
  quiet_hours: "{start}-{end}"
journeys:
  promo:
    trigger: customer.signed_up
    steps:
      - send promo
      - send promo-2
"""


async def test_an_unsubscribe_while_a_send_is_deferred_stops_it(client, sink, tmp_path):
    # Quiet hours around the real time now, so the first send is held for ~2 hours.
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    rules = RULES.format(start=f"{start:%H:%M}", end=f"{end:%H:%M}")
    templates = write_templates(tmp_path / "templates", ["promo", "promo-2"])
    store = compile_store(rules, templates)
    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("customer.signed_up", cid, {"name": "Ann", "email": "ann@x.test"}))

        async def deferred():
            st = await status(client, cid)
            waits = [a.get("waiting") for a in st["active"]]
            return st if waits and waits[0] and waits[0]["kind"] == "defer" else None

        st = await wait_until(deferred, 30, "the send to be held by quiet hours")
        wait = st["active"][0]["waiting"]
        assert wait["reason"] == "quiet_hours"
        assert wait["detail"] == f"quiet hours until {end:%H:%M} UTC"
        text = format_status(st)
        assert (
            f"  promo: send waiting until {wait['deadline']}: quiet hours until {end:%H:%M} UTC ("
            in text
        )
        assert " defer   promo until " in text  # the journal line

        await send(event("customer.unsubscribed", cid))
        st = await wait_end(client, cid, "promo")
    lines = [
        (j["action"], j.get("template"), j.get("status"), j.get("reason")) for j in st["journal"]
    ]
    assert lines == [
        ("start", None, None, None),
        ("defer", "promo", None, "quiet_hours"),
        ("send", "promo", "suppressed", "unsubscribed"),
        ("send", "promo-2", "suppressed", "unsubscribed"),
        ("end", None, None, "completed"),
    ]
    assert st["profile"]["unsubscribed"] is True
    assert sink.messages == []


async def test_a_customer_in_flight_at_the_deploy_honours_an_unsubscribe(client, sink, tmp_path):
    """Started by the engine before the contact policy, the customer's run is taken over
    by the new worker (it replays the old history unchanged); the unsubscribe that arrives
    afterwards makes it look up at once, learn that the worker applies the policy, and
    suppress the journey's next send."""
    import dataclasses
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from engine.delivery.email_activity import EmailActivities
    from engine.delivery.ledger import open_ledger
    from engine.delivery.smtp import SmtpSettings
    from engine.runtime.assembly import assemble
    from engine.runtime.client import send_event
    from engine.runtime.config import customer_workflow_id
    from engine.runtime.worker import LookupActivities, workflow_runner
    from tests.e2e.conftest import wait_messages
    from tests.e2e.pre_policy import PrePolicyWorkflow

    rules = """
journeys:
  promo:
    trigger: customer.signed_up
    steps:
      - send promo
      - wait 15 seconds
      - send promo-2
"""
    templates = write_templates(tmp_path / "templates", ["promo", "promo-2"])
    old_store = compile_store(rules, templates)
    old_store.settings = dataclasses.replace(old_store.settings, contact_policy=False)
    new_store = compile_store(rules, templates)
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false", timeout=5)
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    ledger_path = tmp_path / "ledger.sqlite"
    cid = new_customer()

    old_email = EmailActivities(templates, smtp, await open_ledger(None, ledger_path))
    old = Worker(
        client,
        task_queue=queue,
        workflows=[PrePolicyWorkflow],
        activities=[old_email.send_email, LookupActivities(old_store).lookup_journeys],
        activity_executor=ThreadPoolExecutor(max_workers=2),
        workflow_runner=workflow_runner(),
        max_cached_workflows=0,  # no sticky queue: the next worker takes over at once
    )
    async with old:
        await send_event(
            client,
            event("customer.signed_up", cid, {"name": "Ann", "email": "ann@x.test"}),
            task_queue=queue,
        )
        await wait_messages(sink, 1)
    await old_email.close()

    async with assemble(client, new_store, smtp, ledger_path, queue, templates_dir=templates):
        await send_event(client, event("customer.unsubscribed", cid), task_queue=queue)
        st = await wait_end(client, cid, "promo", timeout=60)
    lines = [
        (j["action"], j.get("template"), j.get("status"), j.get("reason")) for j in st["journal"]
    ]
    assert lines == [
        ("start", None, None, None),
        ("send", "promo", "sent", None),
        ("send", "promo-2", "suppressed", "unsubscribed"),
        ("end", None, None, "completed"),
    ]
    assert [m.message["Subject"] for m in sink.messages] == ["promo for Ann"]
    # The run never had the contact-policy-v1 marker: it switched on from the lookup.
    history = await client.get_workflow_handle(customer_workflow_id(cid)).fetch_history()
    markers = [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and "patch-data" in e.marker_recorded_event_attributes.details
    ]
    assert b"contact-policy-v1" not in b" ".join(markers)
    assert b"contact-policy-switch-v1" in b" ".join(markers)
    # And the history (an old run taken over) replays on today's workflow; a copy of one
    # is kept in tests/workflows/histories (contact-policy-switch-v1-customer-takeover).
    from temporalio.worker import Replayer

    from workflows.customer import CustomerWorkflow

    await Replayer(workflows=[CustomerWorkflow], workflow_runner=workflow_runner()).replay_workflow(
        history
    )
