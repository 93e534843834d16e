"""``python worker.py`` as a real child process: embedded defaults, crashes, restarts.

These tests use the worker's default task queue, so each runs against a Temporal server
no other worker polls on that queue (the in-process tests use their own queues).
"""

from __future__ import annotations

import sqlite3
import subprocess
from email import policy
from email.parser import BytesParser
from pathlib import Path

from engine.runtime.client import connect, send_event
from engine.runtime.servers import port_open
from engine.tools.smtp_sink import free_port
from tests.e2e.conftest import (
    BIN,
    clean_env,
    ends,
    event,
    kill9,
    new_customer,
    sends,
    start_temporal,
    status,
    subjects,
    wait_end,
    wait_messages,
    wait_until,
    worker_env,
)

ANN = {"name": "Ann", "email": "ann@x.test"}


async def test_worker_with_no_configuration_runs_embedded_servers(workers, tmp_path):
    temporal_port, ui_port, smtp_port = free_port(), free_port(), free_port()
    env = clean_env(
        LIFECYCLE_TEMPORAL_PORT=str(temporal_port),
        LIFECYCLE_UI_PORT=str(ui_port),
        LIFECYCLE_SMTP_PORT=str(smtp_port),
    )
    worker = workers(tmp_path, env)
    assert port_open("127.0.0.1", temporal_port) and port_open("127.0.0.1", smtp_port)

    cid = new_customer()
    ev = (
        f'{{"id": "e-1", "type": "test.hello", "customer_id": "{cid}", '
        '"customer": {"name": "Ann", "email": "ann@x.test"}}'
    )
    cli = subprocess.run(
        [str(BIN / "lifecycle"), "send-event", ev],
        env=clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"customer-{cid}" in cli.stdout

    outbox = tmp_path / "outbox"
    files = await wait_until(lambda: sorted(outbox.glob("*.eml")), 30, "an .eml in the outbox")
    first = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert first["Subject"] == "Hello Ann"
    assert first["To"] == "ann@x.test"

    assert worker.terminate() == 0, worker.log()
    # The worker stopped what it started: the dev server and the SMTP sink are gone.
    assert not port_open("127.0.0.1", temporal_port), worker.log()
    assert not port_open("127.0.0.1", smtp_port)
    assert (tmp_path / "temporal" / "temporal.db").exists()


def ledger_rows(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return conn.execute("SELECT status, message_id FROM sent_ledger").fetchall()
        except sqlite3.OperationalError:  # table not created yet
            return []


async def test_worker_killed_after_send_does_not_send_twice(
    temporal_server, client, sink, workers, tmp_path
):
    env = worker_env(temporal_server, sink.port)
    # Test values instead of production ones, so nothing waits long after the kill: the
    # customer's next workflow task leaves the dead worker's sticky queue after 1 s, not 10.
    crashy_env = dict(
        env, LIFECYCLE_FAULT_PAUSE_AFTER_SEND="60", LIFECYCLE_STICKY_QUEUE_TIMEOUT="1"
    )
    crashy = workers(tmp_path, crashy_env, "crashy")
    cid = new_customer()
    # ... and the send is retried after a 2 s heartbeat timeout, not 15.
    await send_event(client, event("test.hello", cid, ANN, id="e-1"), send_heartbeat_seconds=2)

    # SMTP took the first email and the ledger recorded it; the activity now sleeps
    # before returning, so Temporal has not heard that it completed.
    await wait_messages(sink, 1)
    rows = await wait_until(lambda: ledger_rows(tmp_path / "ledger.sqlite"), 30, "ledger row")
    crashy.kill9()
    assert len(sink.messages) == 1
    first_id = sink.messages[0].message["Message-ID"]
    assert rows == [("sent", first_id)]

    workers(tmp_path, env, "healthy")
    # The retry comes after the heartbeat timeout; then the wait, then the followup.
    messages = await wait_messages(sink, 2, timeout=60)
    st = await wait_end(client, cid, "hello-followup")
    assert subjects(messages) == ["Hello Ann", "Following up, Ann"]
    assert [m.message["Message-ID"] for m in messages].count(first_id) == 1
    hello, followup = sends(st, "hello-followup")
    assert hello["status"] == "duplicate"  # the retry found the ledger entry, sent nothing
    assert followup["status"] == "sent"
    assert ends(st, "hello-followup")[0]["reason"] == "completed"


async def test_dev_server_killed_during_wait_resumes_on_same_database(sink, workers, tmp_path):
    data = tmp_path / "temporal"
    server = start_temporal(data)
    worker_data = tmp_path / "worker"
    started = []
    try:
        env = worker_env(server, sink.port)
        first = workers(worker_data, env, "first")
        started.append(first)
        client = await connect(server.address)
        cid = new_customer()
        await send_event(client, event("test.long", cid, ANN, id="e-1"))
        await wait_messages(sink, 1)

        async def waiting():
            st = await status(client, cid)
            active = [a for a in st["active"] if a["journey"] == "long-wait"]
            return active and active[0].get("waiting")

        waiting_for = await wait_until(waiting, 30, "long-wait to wait 10 seconds")
        assert waiting_for["kind"] == "timer" and waiting_for["seconds_left"] >= 3

        kill9(server.process)
        first.kill9()
        assert subjects(sink.messages) == ["Hello Ann"]  # the timer had not fired yet

        server = start_temporal(data, port=server.port)  # same SQLite file, same port
        started.append(workers(worker_data, env, "second"))
        client = await connect(server.address)
        messages = await wait_messages(sink, 2, timeout=60)
        st = await wait_end(client, cid, "long-wait")
        assert subjects(messages) == ["Hello Ann", "Following up, Ann"]
        assert [s["status"] for s in sends(st, "long-wait")] == ["sent", "sent"]
        assert ends(st, "long-wait")[0]["reason"] == "completed"
    finally:
        for w in started:  # before the server, so they do not outlive it
            w.terminate(timeout=20)
        server.stop()
        kill9(server.process)
