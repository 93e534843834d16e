"""Customer-wide settings (sender, unsubscribe link) are customer state, delivered by the
lookup, not copied into each journey: a change reaches journeys already under way at the
customer's next lookup; a journey pinned before (which carries its own copy, with its
trigger as a bare event type) keeps what it started with and runs to its end."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from dsl.ir import Trigger, to_dict
from engine.delivery.email_activity import EmailActivities
from engine.delivery.ledger import open_ledger
from engine.delivery.smtp import SmtpSettings
from engine.runtime.client import send_event
from engine.runtime.worker import build_worker
from engine.tools.simulator import start_environment
from engine.tools.smtp_sink import SmtpSink
from tests.workflows.harness import compile_plan, compile_store, until, write_templates
from workflows.customer import CustomerWorkflow
from workflows.state import CustomerInput, CustomerState, Instance

RULES = """
settings:
  sender: "SENDER"
  unsubscribe_url: "https://UNSUB.test/u/{customer_id}"
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait 1 day
      - send later
  ping:
    trigger: ping
    steps:
      - send pong
"""


def rules(sender: str, unsub: str) -> str:
    return RULES.replace("SENDER", sender).replace("UNSUB", unsub)


@pytest.fixture
async def env():
    env = await start_environment()
    yield env
    await env.shutdown()


async def test_settings_are_customer_state_and_pinned_old_journeys_keep_theirs(env, tmp_path):
    templates = write_templates(tmp_path / "templates", ["later", "pong"])
    store = compile_store(rules("Old Shop <old@acme.test>", "old"), templates)
    new_plan = compile_plan(rules("New Shop <new@acme.test>", "new"), templates)

    # A journey pinned before settings were customer state: its trigger a bare event
    # type, sender and unsubscribe link copied in; in flight at its `wait 1 day`.
    legacy = to_dict(
        compile_plan(rules("Old Shop <old@acme.test>", "old"), templates).journeys["j"]
    )
    legacy.update(
        trigger="customer.signed_up",
        sender="Pinned Shop <pinned@acme.test>",
        unsubscribe_url="https://pinned.test/u/{customer_id}",
        hash="legacy0000000000",
    )
    state = CustomerState(
        customer_id="c-pinned",
        profile={"email": "pinned@example.test"},
        plans={"legacy0000000000": legacy},
        instances={
            "j:1": Instance(
                id="j:1",
                journey="j",
                hash="legacy0000000000",
                key="",
                trigger={},
                started_at="2030-01-01T00:00:00Z",
            )
        },
        seq=1,
    )

    sink = SmtpSink().start()
    ledger = await open_ledger(None, tmp_path / "ledger.sqlite")
    email = EmailActivities(templates, SmtpSettings(host="127.0.0.1", port=sink.port), ledger)
    queue = f"q-{uuid.uuid4().hex[:6]}"
    try:
        async with build_worker(env.client, store, email, task_queue=queue):
            await env.client.start_workflow(
                CustomerWorkflow.run,
                CustomerInput(customer_id="c-pinned", state=state),
                id="customer-c-pinned",
                task_queue=queue,
            )
            signup = {
                "type": "customer.signed_up",
                "customer_id": "c-new",
                "customer": {"email": "new@example.test"},
            }
            await send_event(env.client, signup, task_queue=queue)
            handle = env.client.get_workflow_handle("customer-c-new")
            for _ in range(200):
                if (await handle.query("status"))["active"]:
                    break
                await asyncio.sleep(0.05)
            # The shop changes its settings while both journeys wait; c-new's next
            # event (one that starts a journey) brings the new settings to its state.
            store._index(new_plan)
            await env.sleep(timedelta(minutes=2))  # past the trigger cache's minute
            ping = {"type": "ping", "customer_id": "c-new", "data": {}}
            await send_event(env.client, ping, task_queue=queue)
            await until(lambda: len(sink.messages) >= 1)
            await env.sleep(timedelta(days=1, minutes=1))
            await until(lambda: len(sink.messages) >= 3)
    finally:
        await email.close()
        sink.stop()

    got = {
        (m.rcpt_tos[0], m.message["Subject"].split()[0]): (
            m.message["From"],
            m.message["List-Unsubscribe"],
        )
        for m in sink.messages
    }
    assert got == {
        ("new@example.test", "pong"): ("New Shop <new@acme.test>", "<https://new.test/u/c-new>"),
        # The journey that started under the old settings sends with the new ones.
        ("new@example.test", "later"): ("New Shop <new@acme.test>", "<https://new.test/u/c-new>"),
        # The journey pinned with its own copy keeps it.
        ("pinned@example.test", "later"): (
            "Pinned Shop <pinned@acme.test>",
            "<https://pinned.test/u/c-pinned>",
        ),
    }
    assert new_plan.journeys["j"].trigger == Trigger(kind="event", event="customer.signed_up")
