"""The send activity's heartbeat timeout is part of ``CustomerInput``
(``send_heartbeat_seconds``, default 15): tests lower it so a crashed worker's send is
retried in seconds. It is carried through continue-as-new, and a different value replays
against histories recorded with the old one (Temporal does not compare timeouts)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from engine.runtime.client import send_event
from engine.runtime.config import customer_workflow_id
from engine.runtime.worker import workflow_runner
from tests.workflows.harness import compile_store, write_templates
from tests.workflows.test_durability import until, worker
from workflows.customer import CustomerWorkflow

HISTORIES = Path(__file__).parent / "histories"
RECORDED = HISTORIES / "20261201-state-bounds-v1-customer-c-ann.json"


def _scheduled_heartbeats(history: dict) -> list[str]:
    return [
        a["heartbeatTimeout"]
        for e in history["events"]
        if (a := e.get("activityTaskScheduledEventAttributes"))
        and a["activityType"]["name"] == "send_email"
    ]


async def test_a_different_heartbeat_replays_against_a_history_recorded_with_15_s():
    recorded = json.loads(RECORDED.read_text())
    assert set(_scheduled_heartbeats(recorded)) == {"15s"}  # the commands said 15 s
    payload = recorded["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
    data = json.loads(base64.b64decode(payload["payloads"][0]["data"]))
    assert "send_heartbeat_seconds" not in data  # recorded before the field existed
    data["send_heartbeat_seconds"] = 2.0
    payload["payloads"][0]["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    replayer = Replayer(workflows=[CustomerWorkflow], workflow_runner=workflow_runner())
    # The workflow now issues its sends with a 2 s heartbeat timeout; replay still passes.
    await replayer.replay_workflow(WorkflowHistory.from_json("c-ann", recorded))


async def test_the_heartbeat_is_used_for_sends_and_carried_through_continue_as_new(
    sim_env, tmp_path
):
    templates = write_templates(tmp_path / "t", ["welcome"])
    store = compile_store(
        'settings:\n  sender: "Acme <hello@acme.test>"\n'
        "journeys:\n  j:\n    trigger: go\n    key: trigger.n\n    steps:\n      - send welcome\n",
        templates,
    )
    cid = f"hb-{uuid.uuid4().hex[:6]}"
    handle = sim_env.client.get_workflow_handle(customer_workflow_id(cid))
    async with worker(sim_env, store, templates, tmp_path) as (queue, sink):

        def go(n: int) -> dict:
            profile = {"email": f"{cid}@example.test"}
            return {
                "id": f"e-{n}",
                "type": "go",
                "customer_id": cid,
                "customer": profile,
                "data": {"n": n},
            }

        await send_event(
            sim_env.client, go(0), task_queue=queue, history_limit=40, send_heartbeat_seconds=2
        )
        for n in range(1, 8):  # enough history for a continue-as-new at 40 events
            await send_event(sim_env.client, go(n), task_queue=queue)

        async def continued():
            desc = await handle.describe()
            info = desc.raw_description.workflow_execution_info
            return len(sink.messages) == 8 and info.first_run_id != desc.run_id

        await until(continued)
        await send_event(sim_env.client, go(8), task_queue=queue)  # sent by the new run

        async def all_sent():
            return len(sink.messages) == 9

        await until(all_sent)
        first_run = (await handle.describe()).raw_description.workflow_execution_info
        heartbeats = []
        run_id = first_run.first_run_id
        while run_id:
            history = await sim_env.client.get_workflow_handle(
                customer_workflow_id(cid), run_id=run_id
            ).fetch_history()
            heartbeats += _scheduled_heartbeats(history.to_json_dict())
            last = history.events[-1]
            run_id = (
                last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                if last.HasField("workflow_execution_continued_as_new_event_attributes")
                else ""
            )
        await handle.terminate()
    assert len(heartbeats) == 9
    assert set(heartbeats) == {"2s"}
