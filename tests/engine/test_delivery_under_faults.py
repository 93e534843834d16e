"""Exactly-once delivery while the ledger is slow (issue 7, case 3): the real email activity
on a real Temporal worker (time-skipping server), retried forever as CustomerWorkflow
retries it, with the ledger locked by another connection for a few seconds. Deliveries are
counted at the SMTP server.

Timeouts are scaled down (heartbeat timeout 1 s, ledger waits 0.5 s, lock held 4 s), which
keeps their order: ledger wait < heartbeat interval < heartbeat timeout < start-to-close.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import uuid
from collections import Counter

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from engine.delivery.email_activity import EmailActivities
from engine.delivery.ledger import open_ledger
from engine.delivery.smtp import SmtpSettings
from engine.runtime.worker import workflow_runner
from engine.tools.simulator import quiet_runtime, start_environment
from tests.engine.faulty_smtp import DroppingRelay
from tests.workflows.send_workflow import SendOnceTestWorkflow

SENDS = 5
HOLD = 4.0  # seconds the other connection holds its lock
WORKERS = 3


@pytest.fixture(scope="module")
async def env():
    """One time-skipping server for the module: each test has its own task queue and
    workflow ids."""
    env = await start_environment()
    yield env
    await env.shutdown()


@pytest.fixture(autouse=True)
def small_ledger_timeouts(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_LEDGER_TIMEOUT", "0.5")
    monkeypatch.setenv("LIFECYCLE_SEND_LEASE", "6")


def payload(key: str) -> dict:
    return {
        "idempotency_key": key,
        "kind": "send",
        "template": "welcome",
        "to": "ann@example.test",
        "sender": "Acme <hello@acme.test>",
        "customer_id": "c-42",
        "journey": "welcome-series",
        "context": {"customer": {"name": "Ann", "email": "ann@example.test"}, "trigger": {}},
        "unsubscribe_url": "",
        "sent_at": "2026-01-03T00:00:00Z",
    }


class LockHolder:
    """Another connection that holds a lock on the ledger for ``HOLD`` seconds."""

    def __init__(self, acquire, release) -> None:
        self._acquire, self._release = acquire, release
        self.locked = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        handle = self._acquire()
        self.locked.set()
        try:
            threading.Event().wait(HOLD)
        finally:
            self._release(handle)

    def __enter__(self) -> LockHolder:
        self._thread.start()
        assert self.locked.wait(10), "the lock was not taken"
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(HOLD + 10)


def sqlite_write_lock(path):
    def acquire():
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")  # the write lock: every other writer waits
        return conn

    def release(conn):
        conn.execute("COMMIT")
        conn.close()

    return LockHolder(acquire, release)


def postgres_share_lock(url, table):
    import psycopg

    def acquire():
        conn = psycopg.connect(url)
        conn.execute(f"LOCK TABLE {table} IN SHARE MODE")  # blocks INSERT, not SELECT
        return conn

    def release(conn):
        conn.commit()
        conn.close()

    return LockHolder(acquire, release)


async def send_while_locked(env, open_one, templates_dir, sink, lock) -> Counter:
    """Several workers (each with its own ledger connection, as worker processes have) on one
    task queue, so a retry may run on a worker that is not itself stuck on the ledger. The
    sends go one after another: the first meets the lock, the others follow it."""
    emails = [
        EmailActivities(
            templates_dir,
            SmtpSettings(port=sink.port, starttls="false", timeout=5),
            await open_one(),
        )
        for _ in range(WORKERS)
    ]
    queue = f"q-{uuid.uuid4().hex[:6]}"
    try:
        async with contextlib.AsyncExitStack() as stack:
            for email in emails:
                # One client per worker: one client cannot register two workers on a queue.
                client = await Client.connect(
                    env.client.service_client.config.target_host,
                    namespace=env.client.namespace,
                    runtime=quiet_runtime(),
                )
                await stack.enter_async_context(
                    Worker(
                        client,
                        task_queue=queue,
                        workflows=[SendOnceTestWorkflow],
                        activities=[email.send_email],
                        workflow_runner=workflow_runner(),
                        # An attempt still running keeps its slot, so a retry runs on
                        # another worker, as it would with several busy worker processes.
                        max_concurrent_activities=1,
                    )
                )
            with lock:
                for i in range(SENDS):
                    await env.client.execute_workflow(
                        SendOnceTestWorkflow.run,
                        {"payload": payload(f"k-{i}"), "start_to_close": 10, "heartbeat": 1},
                        id=f"send-{uuid.uuid4().hex[:8]}",
                        task_queue=queue,
                    )
            await asyncio.sleep(0.5)  # let a (wrong) straggler delivery arrive before counting
            for i in range(SENDS):
                assert (await emails[0].ledger.get(f"k-{i}")).status == "sent"
    finally:
        for email in emails:
            await email.close()
    return Counter(m.message["Message-ID"] for m in sink.messages)


def assert_once_each(delivered: Counter) -> None:
    total = sum(delivered.values())
    assert (total, len(delivered)) == (SENDS, SENDS), (
        f"{SENDS} sends gave {total} deliveries: {sorted(delivered.values())}"
    )


async def test_sqlite_write_lock_delays_but_never_multiplies_emails(
    env, tmp_path, templates_dir, sink
):
    path = tmp_path / "ledger.sqlite"
    await (await open_ledger(None, path)).close()  # the table exists before it is locked

    async def open_one():
        return await open_ledger(None, path)

    delivered = await send_while_locked(env, open_one, templates_dir, sink, sqlite_write_lock(path))
    assert_once_each(delivered)


async def test_postgres_locked_ledger_table_delays_but_never_multiplies_emails(
    env, tmp_path, templates_dir, sink, postgres_url, pg_table
):
    async def open_one():
        return await open_ledger(postgres_url, tmp_path / "unused.sqlite", table=pg_table)

    await (await open_one()).close()  # the table exists before it is locked
    lock = postgres_share_lock(postgres_url, pg_table)
    delivered = await send_while_locked(env, open_one, templates_dir, sink, lock)
    assert_once_each(delivered)


async def test_drops_after_data_are_resent_by_temporal_retries_one_data_each(
    env, tmp_path, templates_dir
):
    # Issue 7 case 4 through Temporal: the relay stores the message and drops the
    # connection 3 times. Each attempt transmits it once and fails retryably; Temporal's
    # retry (after its backoff) sends it again with the same Message-ID.
    ledger = await open_ledger(None, tmp_path / "ledger.sqlite")
    with DroppingRelay(drops=3) as relay:
        email = EmailActivities(
            templates_dir, SmtpSettings(port=relay.port, starttls="false", timeout=5), ledger
        )
        queue = f"q-{uuid.uuid4().hex[:6]}"
        try:
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[SendOnceTestWorkflow],
                activities=[email.send_email],
                workflow_runner=workflow_runner(),
            ):
                handle = await env.client.start_workflow(
                    SendOnceTestWorkflow.run,
                    {"payload": payload("k-drop"), "start_to_close": 10, "heartbeat": 2},
                    id=f"send-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
                result = await handle.result()
                history = await handle.fetch_history()
        finally:
            await email.close()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert result["status"] == "sent"
    assert (attempts[-1], relay.data_commands) == (4, 4)  # one DATA per attempt
    assert [m["Message-ID"] for m in relay.stored] == [result["message_id"]] * 4
