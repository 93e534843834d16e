"""Journeys on the real Temporal dev server with an in-process worker and a real SMTP sink.

Each test runs the real worker (customer workflow, email activity, SQLite sent-ledger) on
its own task queue, compiled from the fixture rules, and watches what reaches the sink
and what the customer's ``status`` query and workflow history say.
"""

from __future__ import annotations

import re

from temporalio.api.enums.v1 import EventType, RetryState

from engine.runtime.config import customer_workflow_id
from engine.tools.smtp_sink import SmtpSink, free_port
from tests.e2e.conftest import (
    ends,
    event,
    in_process_worker,
    new_customer,
    sends,
    status,
    subjects,
    wait_end,
    wait_messages,
    wait_until,
)

ANN = {"name": "Ann", "email": "ann@x.test"}


async def test_same_event_id_twice_is_processed_once(client, store, sink, tmp_path):
    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        # `once` has reentry: always, so only the event-id dedupe can stop a second start.
        await send(event("test.once", cid, ANN, id="evt-dup"))
        await wait_end(client, cid, "once")
        await send(event("test.once", cid, ANN, id="evt-dup"))
        # Events are processed in order: once the barrier's email is out, the duplicate
        # before it has been handled too.
        await send(event("test.barrier", cid, id="evt-barrier"))
        await wait_end(client, cid, "barrier")
        st = await status(client, cid)
    assert subjects(sink.messages) == ["Hello Ann", "Following up, Ann"]
    assert [j["action"] for j in st["journal"] if j["journey"] == "once"] == [
        "start",
        "send",
        "end",
    ]
    assert st["events_processed"] == 2  # evt-dup once, evt-barrier once


async def test_smtp_down_then_up_delivers_once_and_continues(client, store, tmp_path):
    cid = new_customer()
    port = free_port()  # nothing listens here yet
    sink = SmtpSink(port=port)
    try:
        async with in_process_worker(client, store, port, tmp_path) as send:
            await send(event("test.hello", cid, ANN, id="e1"))
            handle = client.get_workflow_handle(customer_workflow_id(cid))

            async def retrying():
                desc = await handle.describe()
                pending = desc.raw_description.pending_activities
                return pending and pending[0].attempt >= 2 and pending[0].last_failure.message

            last_failure = await wait_until(retrying, 30, "send_email to be retried")
            assert "127.0.0.1" in last_failure or "connect" in last_failure.lower()
            assert sink.messages == []
            sink.start()
            messages = await wait_messages(sink, 2, timeout=45)
            st = await wait_end(client, cid, "hello-followup")
        assert subjects(messages) == ["Hello Ann", "Following up, Ann"]
        assert [s["status"] for s in sends(st, "hello-followup")] == ["sent", "sent"]
        assert ends(st, "hello-followup")[0]["reason"] == "completed"
    finally:
        sink.stop()


async def test_5xx_bounce_is_journaled_and_journey_continues(client, store, tmp_path):
    cid = new_customer()
    reject = lambda rcpt: "550 5.1.1 no such user" if rcpt == "bad@x.test" else None  # noqa: E731
    sink = SmtpSink(reject=reject).start()
    try:
        async with in_process_worker(client, store, sink.port, tmp_path) as send:
            await send(event("test.bounce", cid, {"name": "Bo", "email": "bad@x.test"}))
            st = await wait_end(client, cid, "bounce-then-notify")
            messages = await wait_messages(sink, 1)
    finally:
        sink.stop()
    hello, alert = sends(st, "bounce-then-notify")
    assert (hello["template"], hello["status"]) == ("hello", "bounced")
    assert "550" in hello["detail"] and "no such user" in hello["detail"]
    assert (alert["template"], alert["status"], alert["team"]) == ("alert", "sent", "support")
    assert ends(st, "bounce-then-notify")[0]["reason"] == "completed"
    assert len(messages) == 1
    assert messages[0].rcpt_tos == ["support@acme.test"]
    assert messages[0].message["Subject"] == "Alert about Bo"


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return [
        line.split(":", 1)[0].strip().lower()
        for line in head.split("\r\n")
        if line and not line[0].isspace()
    ]


async def test_crlf_in_name_injects_no_header_or_recipient(client, store, sink, tmp_path):
    cid = new_customer()
    evil = {"name": "Ann\r\nBcc: evil@x.test", "email": "ann@x.test"}
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("test.once", cid, evil))
        await wait_end(client, cid, "once")
        messages = await wait_messages(sink, 1)
    assert len(messages) == 1
    msg = messages[0]
    assert msg.rcpt_tos == ["ann@x.test"]
    names = header_names(msg.raw)
    assert "bcc" not in names
    assert names.count("to") == 1 and names.count("cc") == 0
    assert msg.message["To"] == "ann@x.test"
    assert msg.message["Bcc"] is None
    # No raw CR or LF survives inside any header line: every line ends in CRLF.
    head = msg.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")


async def test_template_error_fails_journey_once_and_others_keep_running(
    client, store, sink, tmp_path
):
    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("test.broken", cid, ANN))  # starts `broken` and `broken-sibling`
        st = await wait_end(client, cid, "broken")
        messages = await wait_messages(sink, 2)
        st = await wait_end(client, cid, "broken-sibling")
        handle = client.get_workflow_handle(customer_workflow_id(cid))
        history = await handle.fetch_history()

    end = ends(st, "broken")[0]
    assert end["reason"] == "failed"
    assert end["error_type"] == "TemplateError"
    assert re.search(r"\btypo\.html\.j2:3: ", end["error"]), end["error"]
    assert "nmae" in end["error"]
    assert sends(st, "broken") == []

    # Attempted once: the failed send was scheduled once, started on attempt 1 and its
    # failure is non-retryable (Temporal keeps only the last attempt in history).
    scheduled = [
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "send_email"
        and b'"typo"' in e.activity_task_scheduled_event_attributes.input.payloads[0].data
    ]
    assert len(scheduled) == 1
    started = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id == scheduled[0]
    ]
    failed = [
        e.activity_task_failed_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        and e.activity_task_failed_event_attributes.scheduled_event_id == scheduled[0]
    ]
    assert [s.attempt for s in started] == [1]
    assert len(failed) == 1
    assert failed[0].failure.application_failure_info.type == "TemplateError"
    assert failed[0].failure.application_failure_info.non_retryable
    assert failed[0].retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE

    # The sibling journey, started by the same event, was not disturbed.
    assert ends(st, "broken-sibling")[0]["reason"] == "completed"
    assert subjects(messages) == ["Hello Ann", "Following up, Ann"]


async def test_goal_ends_journey_waiting_on_timer(client, store, sink, tmp_path):
    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("test.goal", cid, ANN))

        async def waiting_on_timer():
            st = await status(client, cid)
            active = [a for a in st["active"] if a["journey"] == "goal-wait"]
            return active and active[0].get("waiting", {}).get("kind") == "timer"

        await wait_until(waiting_on_timer, 30, "goal-wait to wait 1 hour")
        await send(event("order.placed", cid, {"orders_count": 1}, id="o-1"))
        st = await wait_end(client, cid, "goal-wait")
    assert ends(st, "goal-wait")[0]["reason"] == "goal"
    assert st["active"] == []
    assert st["profile"]["orders_count"] == 1
    assert subjects(sink.messages) == ["Hello Ann"]


async def test_lifecycle_status_shows_a_waiting_journey(
    client, store, sink, tmp_path, temporal_server
):
    import asyncio
    import json
    import sys
    from pathlib import Path

    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("test.long", cid, ANN, id="evt-st"))
        await wait_messages(sink, 1)
        await wait_until(lambda: _waiting(client, cid), 30, "a waiting journey")
        cli = str(Path(sys.executable).parent / "lifecycle")
        args = ["status", cid, "--address", temporal_server.address]
        proc = await asyncio.create_subprocess_exec(
            cli, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        assert f"customer {cid} (events processed: 1)" in text
        assert "  long-wait: waiting until " in text
        assert "tests/e2e/fixtures/rules/journeys.yaml:" in text or "journeys.yaml:" in text
        proc = await asyncio.create_subprocess_exec(
            cli, *args, "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        data = json.loads(out)
        assert data["profile"]["name"] == "Ann"
        assert [a["journey"] for a in data["active"]] == ["long-wait"]
        assert data["active"][0]["waiting"]["kind"] == "timer"
        missing = await asyncio.create_subprocess_exec(
            cli,
            "status",
            "nobody-" + cid,
            "--address",
            temporal_server.address,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await missing.communicate()
        assert missing.returncode == 1
        assert f"error: no customer 'nobody-{cid}'" in err.decode()


async def _waiting(client, cid):
    st = await status(client, cid)
    return any(a.get("waiting") for a in st["active"])
