"""Continue-as-new carries everything; journeys keep the plan they started with; saved
histories still replay on today's interpreter."""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import send_event
from engine.runtime.config import customer_workflow_id
from engine.runtime.worker import workflow_runner
from engine.tools.simulator import start_environment
from engine.tools.smtp_sink import SmtpSink
from tests.workflows.harness import compile_plan, compile_store, until, write_templates
from workflows.customer import CustomerWorkflow
from workflows.state import CustomerInput

HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture(scope="module")
async def env():
    """One time-skipping server for the module: each test has its own task queue and
    workflow ids."""
    env = await start_environment()
    yield env
    await env.shutdown()


@pytest.fixture
def templates(tmp_path):
    return write_templates(tmp_path / "templates", ["welcome", "later", "v1", "v2"])


@asynccontextmanager
async def worker(env, store, templates: Path, tmp_path: Path):
    """The real worker (email activity, SQLite ledger, a real SMTP sink) on a fresh task
    queue; yields (task queue, sink)."""
    sink = SmtpSink().start()
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
    queue = f"q-{uuid.uuid4().hex[:6]}"
    try:
        async with assemble(
            env.client, store, smtp, tmp_path / "ledger.sqlite", queue, templates_dir=templates
        ):
            yield queue, sink
    finally:
        sink.stop()


async def test_continue_as_new_carries_profile_journeys_and_dedupe_ids(env, tmp_path):
    templates = write_templates(
        tmp_path / "templates",
        ["welcome", "barrier"],
        {"later": "{% block subject %}{{ customer.stage }} {{ customer.visits }}{% endblock %}"},
    )
    store = compile_store(
        """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - send welcome
      - wait 3 days
      - set customer.stage = "late"
      - send later
  b:
    trigger: check
    steps:
      - send barrier
""",
        templates,
    )
    wf_id = customer_workflow_id("c-can")

    def ev(type_, n, **customer):
        return {
            "id": f"e-{n}",
            "type": type_,
            "customer_id": "c-can",
            "data": {},
            "customer": {"name": "Cat", "email": "cat@example.test", **customer},
        }

    # No queries here until the end: the time-skipping test server can leave time
    # skipping locked when a query reaches a run that is continuing as new, and then
    # env.sleep never skips. Emails in the sink tell what happened instead.
    async with worker(env, store, templates, tmp_path) as (queue, sink):
        handle = await env.client.start_workflow(
            CustomerWorkflow.run,
            CustomerInput(customer_id="c-can", history_limit=40),
            id=wf_id,
            task_queue=queue,
        )
        first_run = handle.first_execution_run_id or (await handle.describe()).run_id
        await send_event(env.client, ev("customer.signed_up", 0), task_queue=queue)
        await until(lambda: _count(sink, 1))
        for n in range(1, 30):  # enough events to pass the history limit
            await send_event(env.client, ev("ping", n, visits=n), task_queue=queue)
        await send_event(env.client, ev("customer.signed_up", 0), task_queue=queue)  # dup
        await send_event(env.client, ev("check", 30), task_queue=queue)
        # Events are processed in order: the barrier's email means all came through.
        await until(lambda: _count(sink, 2))
        h = env.client.get_workflow_handle(wf_id)
        assert (await h.describe()).run_id != first_run, "it should have continued as new"
        await env.sleep(timedelta(days=3, minutes=1))
        await until(lambda: _count(sink, 3))
        subjects = [m.message["Subject"] for m in sink.messages]
        # The journey waited across continue-as-new; the profile came along; the
        # duplicate signup started nothing.
        assert subjects == ["welcome for Cat", "barrier for Cat", "late 29"]


async def _count(sink, n):
    return len(sink.messages) >= n


async def _processed(handle, n):
    try:
        return (await handle.query("status"))["events_processed"] >= n
    except Exception:  # between runs during continue-as-new
        return False


async def test_a_journey_keeps_the_plan_it_started_with(env, tmp_path, templates):
    rules_v1 = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait 1 day
      - send v1
"""
    store = compile_store(rules_v1, templates)
    async with worker(env, store, templates, tmp_path) as (queue, sink):
        for cid in ("old", "new"):
            if cid == "new":
                # The rules change while "old" is waiting.
                store._index(compile_plan(rules_v1.replace("v1", "v2"), templates))
            await send_event(
                env.client,
                {
                    "type": "customer.signed_up",
                    "customer_id": cid,
                    "customer": {"email": f"{cid}@x.test"},
                    "data": {},
                },
                task_queue=queue,
            )
            h = env.client.get_workflow_handle(customer_workflow_id(cid))
            await until(lambda h=h: _active(h))
        await env.sleep(timedelta(days=1, minutes=1))
        await until(lambda: _count(sink, 2))
        got = {m.rcpt_tos[0]: m.message["Subject"] for m in sink.messages}
        assert got == {"old@x.test": "v1 for you", "new@x.test": "v2 for you"}


async def _active(handle):
    return bool((await handle.query("status"))["active"])


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_saved_histories_replay_on_the_current_interpreter(path):
    """Histories recorded from earlier versions of the interpreter must replay without a
    non-determinism error; a change that alters the commands a running workflow issues
    must be guarded with workflow.patched() (see docs/operations.md)."""
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    replayer = Replayer(workflows=[CustomerWorkflow], workflow_runner=workflow_runner())
    await replayer.replay_workflow(history)


def test_there_are_saved_histories():
    assert len(list(HISTORIES.glob("*.json"))) >= 1


async def test_events_that_trigger_nothing_skip_the_lookup_until_the_cache_expires(
    env, templates, tmp_path
):
    rules = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - send welcome
"""
    store = compile_store(rules, templates)

    def ev(type_, n):
        return {
            "id": f"e-{n}",
            "type": type_,
            "customer_id": "c-tc",
            "customer": {"email": "tc@x.test"},
            "data": {},
        }

    async with worker(env, store, templates, tmp_path) as (queue, sink):
        await send_event(env.client, ev("customer.signed_up", 0), task_queue=queue)
        for n in range(1, 6):
            await send_event(env.client, ev("page.viewed", n), task_queue=queue)
        h = env.client.get_workflow_handle(customer_workflow_id("c-tc"))
        await until(lambda: _processed(h, 6))
        history = await h.fetch_history()
        markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
        lookups = [
            m
            for m in markers
            if m.marker_recorded_event_attributes.marker_name == "core_local_activity"
            and b"lookup_journeys" in m.marker_recorded_event_attributes.SerializeToString()
        ]
        assert len(lookups) == 1  # the signup's; the five page views asked nothing

        # A journey added to the rules starts once the cache has expired.
        added = rules.replace("customer.signed_up", "page.viewed").replace("  j:", "  k:")
        store._index(compile_plan(added, templates))
        await send_event(env.client, ev("page.viewed", 6), task_queue=queue)
        await until(lambda: _processed(h, 7))
        await until(lambda: _count(sink, 1))  # the signup's welcome (it may still be on its way)
        assert len(sink.messages) == 1  # and page.viewed started nothing yet
        await env.sleep(timedelta(seconds=61))
        await send_event(env.client, ev("page.viewed", 7), task_queue=queue)
        await until(lambda: _count(sink, 2))
