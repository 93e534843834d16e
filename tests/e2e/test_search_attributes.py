"""Customers found by their journeys through Temporal's visibility, on the real dev server.

The session's dev server registers ``LifecycleJourneys`` (``EmbeddedTemporal``); each test
runs the real worker on its own task queue and lists customers with
``Client.list_workflows`` (what the web UI's query box runs). Visibility is eventually
consistent: every list is polled until it matches, with a deadline, never timed.
A namespace registered here without the attribute stands for a cluster nobody set up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from dsl.contract import JOURNEYS_ATTRIBUTE
from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import connect, send_event
from engine.runtime.config import customer_workflow_id
from engine.runtime.plans import PlanStore
from engine.runtime.servers import EmbeddedTemporal, port_open
from engine.runtime.visibility import in_journey, journeys_attribute_registered
from engine.tools.smtp_sink import free_port
from tests.e2e.conftest import (
    BIN,
    REPO,
    TEMPLATES,
    clean_env,
    event,
    kill9,
    new_customer,
    status,
    wait_until,
)
from workflows.customer import CustomerWorkflow
from workflows.state import CustomerInput
from workflows.visibility import JOURNEYS_KEY

RULES = """
settings:
  sender: "Acme <hello@acme.test>"
journeys:
  win-back:
    trigger: sa.lapsed
    goal: sa.back
    steps:
      - wait 1 hour
      - send hello
  welcome:
    trigger: sa.signed_up
    goal: sa.done
    steps:
      - wait 1 hour
      - send hello
"""
ANN = {"name": "Ann", "email": "ann@x.test"}
UPSERT = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
TASK_FAILED = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


@pytest.fixture
def rules(tmp_path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "sa.yaml").write_text(RULES)
    return folder


@asynccontextmanager
async def worker(client: Client, rules: Path, sink, tmp_path: Path, store=None):
    """The real worker (its own plan store) on a fresh task queue; yields the queue."""
    store = store or PlanStore(rules, TEMPLATES)
    queue = f"sa-{uuid.uuid4().hex[:8]}"
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false", timeout=5)
    ledger = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.sqlite"
    async with assemble(client, store, smtp, ledger, queue, templates_dir=TEMPLATES):
        yield queue


async def listed(client: Client, journey: str, queue: str) -> set[str]:
    """Workflow ids the visibility query for ``journey`` finds on ``queue``."""
    query = f"{in_journey(journey)} AND TaskQueue = '{queue}'"
    return {wf.id async for wf in client.list_workflows(query)}


async def wait_listed(client, journey: str, queue: str, expected: set[str]) -> None:
    async def matches():
        return await listed(client, journey, queue) == expected

    try:
        await wait_until(matches, 30, f"the customers in {journey}")
    except TimeoutError:
        found = await listed(client, journey, queue)
        raise AssertionError(
            f"{journey}: listed {sorted(found)}, expected {sorted(expected)}"
        ) from None


async def waiting(client, cid: str, journeys: set[str]) -> bool:
    st = await status(client, cid)
    return {a["journey"] for a in st["active"] if a.get("waiting")} == journeys


async def history_events(client, cid: str, run_id: str | None = None) -> list:
    handle = client.get_workflow_handle(customer_workflow_id(cid), run_id=run_id)
    return [e async for e in handle.fetch_history_events()]


def journeys_upserts(events) -> list:
    """The values of JOURNEYS_ATTRIBUTE each upsert in ``events`` set (None: unset)."""
    out = []
    for e in events:
        if e.event_type != UPSERT:
            continue
        fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
        if JOURNEYS_ATTRIBUTE in fields.indexed_fields:
            data = fields.indexed_fields[JOURNEYS_ATTRIBUTE].data
            out.append(json.loads(data) if data else None)
    return out


async def test_the_dev_server_registers_the_attribute(client):
    assert await journeys_attribute_registered(client)


async def test_customers_are_listed_by_the_journeys_they_are_in(client, rules, sink, tmp_path):
    ann, bob, cat, dan = (new_customer(p) for p in ("ann", "bob", "cat", "dan"))
    async with worker(client, rules, sink, tmp_path) as queue:
        for cid, etype in [
            (ann, "sa.lapsed"),
            (bob, "sa.lapsed"),
            (cat, "sa.signed_up"),
            (dan, "sa.lapsed"),
            (dan, "sa.signed_up"),
        ]:
            await send_event(client, event(etype, cid, ANN), task_queue=queue)
        await wait_until(lambda: waiting(client, dan, {"win-back", "welcome"}), 30, "dan's two")
        ids = {c: customer_workflow_id(c) for c in (ann, bob, cat, dan)}
        await wait_listed(client, "win-back", queue, {ids[ann], ids[bob], ids[dan]})
        await wait_listed(client, "welcome", queue, {ids[cat], ids[dan]})
        described = await client.get_workflow_handle(ids[dan]).describe()
        assert described.typed_search_attributes.get(JOURNEYS_KEY) == ["welcome", "win-back"]

        # An event that changes no journey upserts nothing.
        await send_event(client, event("ping", ann, id="ping-1"), task_queue=queue)
        # Ann comes back (win-back's goal): she is no longer listed; Dan still is.
        await send_event(client, event("sa.back", ann, id="back-1"), task_queue=queue)
        await wait_until(lambda: waiting(client, ann, set()), 30, "ann's win-back to end")
        await wait_listed(client, "win-back", queue, {ids[bob], ids[dan]})
        described = await client.get_workflow_handle(ids[ann]).describe()
        assert described.typed_search_attributes.get(JOURNEYS_KEY) is None

        ann_events = await history_events(client, ann)
    # One upsert when win-back started, one when it ended (unset); the events in between
    # changed nothing and upserted nothing. No workflow task failed.
    assert journeys_upserts(ann_events) == [["win-back"], None]
    assert not [e for e in ann_events if e.event_type == TASK_FAILED]


async def test_the_attribute_follows_the_customer_across_continue_as_new(
    client, rules, sink, tmp_path
):
    cid = new_customer()
    wf_id = customer_workflow_id(cid)
    async with worker(client, rules, sink, tmp_path) as queue:
        handle = await client.start_workflow(
            CustomerWorkflow.run,
            CustomerInput(customer_id=cid, history_limit=40),
            id=wf_id,
            task_queue=queue,
        )
        first_run = handle.first_execution_run_id or (await handle.describe()).run_id
        await send_event(client, event("sa.lapsed", cid, ANN, id="l-0"), task_queue=queue)
        for n in range(1, 25):  # enough events to pass the history limit
            await send_event(client, event("ping", cid, id=f"p-{n}"), task_queue=queue)

        async def continued():
            return (await client.get_workflow_handle(wf_id).describe()).run_id != first_run

        await wait_until(continued, 30, "the customer to continue as new")
        await wait_until(lambda: waiting(client, cid, {"win-back"}), 30, "win-back to wait")
        # Only the running run is listed (the closed first run keeps its attribute).
        await wait_listed(client, "win-back", queue, {wf_id})
        runs = [wf.run_id async for wf in client.list_workflows(f"WorkflowId = '{wf_id}'")]
        assert first_run in runs and len(runs) >= 2
        # The first run upserted; the runs after it started with the value (continue-as-new
        # carries search attributes) and upserted nothing.
        assert journeys_upserts(await history_events(client, cid, first_run)) == [["win-back"]]
        for run_id in runs:
            if run_id != first_run:
                events = await history_events(client, cid, run_id)
                fields = events[0].workflow_execution_started_event_attributes.search_attributes
                carried = fields.indexed_fields[JOURNEYS_ATTRIBUTE].data
                assert (json.loads(carried), journeys_upserts(events)) == (["win-back"], [])

        await send_event(client, event("sa.back", cid, id="back-1"), task_queue=queue)
        await wait_until(lambda: waiting(client, cid, set()), 30, "win-back to end")
        await wait_listed(client, "win-back", queue, set())
        described = await client.get_workflow_handle(wf_id).describe()
        assert described.typed_search_attributes.get(JOURNEYS_KEY) is None


async def bare_namespace(client: Client) -> Client:
    """A new namespace on the session server, with no custom search attribute."""
    name = f"bare-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    bare = await Client.connect(client.service_client.config.target_host, namespace=name)

    async def usable():
        async for _ in bare.list_workflows(""):
            break
        return True

    await wait_until(usable, 30, f"namespace {name}")
    return bare


async def test_without_the_attribute_customers_run_and_upsert_nothing(
    client, rules, sink, tmp_path
):
    bare = await bare_namespace(client)
    assert not await journeys_attribute_registered(bare)
    cid = new_customer()
    async with worker(bare, rules, sink, tmp_path) as queue:
        await send_event(bare, event("sa.lapsed", cid, ANN), task_queue=queue)
        await wait_until(lambda: waiting(bare, cid, {"win-back"}), 30, "win-back to wait")
        await send_event(bare, event("sa.back", cid, id="back-1"), task_queue=queue)
        await wait_until(lambda: waiting(bare, cid, set()), 30, "win-back to end")
        events = await history_events(bare, cid)
    assert journeys_upserts(events) == []
    assert not [e for e in events if e.event_type == TASK_FAILED]


async def test_the_guard_matters_an_unregistered_attribute_fails_the_task(
    client, rules, sink, tmp_path
):
    """Why the worker asks first: told (wrongly) that the namespace has the attribute, the
    customer's upsert fails its workflow task, again and again."""
    bare = await bare_namespace(client)
    store = PlanStore(rules, TEMPLATES)
    store.use_search_attributes(True)
    cid = new_customer()
    async with worker(bare, rules, sink, tmp_path, store=store) as queue:
        store.use_search_attributes(True)  # assemble asked the server and turned it off
        await send_event(bare, event("sa.lapsed", cid, ANN), task_queue=queue)

        async def task_failed():
            return [e for e in await history_events(bare, cid) if e.event_type == TASK_FAILED]

        failed = await wait_until(task_failed, 30, "a failed workflow task")
        await bare.get_workflow_handle(customer_workflow_id(cid)).terminate("test over")
    assert JOURNEYS_ATTRIBUTE in failed[0].workflow_task_failed_event_attributes.failure.message


def operations_example() -> str:
    """The Python example of docs/operations.md that lists a journey's customers."""
    text = (REPO / "docs" / "operations.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    (block,) = [b for b in blocks if "in_journey(" in b]
    return block


async def test_the_listing_example_of_the_operations_page_runs_as_written(
    client, rules, sink, tmp_path, temporal_server
):
    cid = new_customer()
    async with worker(client, rules, sink, tmp_path) as queue:
        await send_event(client, event("sa.lapsed", cid, ANN), task_queue=queue)
        await wait_listed(client, "win-back", queue, {customer_workflow_id(cid)})
        script = tmp_path / "example.py"
        script.write_text(operations_example())
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=clean_env(TEMPORAL_ADDRESS=temporal_server.address),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert customer_workflow_id(cid) in done.stdout.splitlines()


async def test_an_embedded_database_from_before_the_attribute_gets_it(tmp_path):
    """``start-dev --search-attribute`` registers only in a database it creates; the
    embedded server adds it to one made before (``var/temporal/temporal.db`` of an older
    version, made here by a dev server started without the flag)."""
    data = tmp_path / "temporal"
    data.mkdir()
    port = free_port()
    older = subprocess.Popen(
        [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
        + ["--headless", "--log-level", "error", "--db-filename", str(data / "temporal.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        await wait_until(lambda: port_open("127.0.0.1", port), 30, "the older server")
        before = await connect(f"127.0.0.1:{port}")
        assert not await journeys_attribute_registered(before)
    finally:
        older.terminate()
        older.wait(timeout=30)
    server = EmbeddedTemporal(data, port=port, ui_port=free_port(), headless=True).start()
    try:
        assert await journeys_attribute_registered(await connect(server.address))
    finally:
        server.stop()
        kill9(server.process)
