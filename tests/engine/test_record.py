"""The durable record of journeys (CONTRACT.md §8, ``engine.runtime.record``) on Temporal's
time-skipping server with the real worker, email activity and SMTP server, into the
ledger's database on SQLite and on PostgreSQL: every measured journal line once, the
same report as from the journals themselves; and a locked record table that delays the
record without losing a line or holding up an email."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta

import pytest

from dsl.contract import RECORDED_ACTIONS, RecordInput
from engine.delivery.ledger import open_ledger
from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import send_event
from engine.runtime.config import customer_workflow_id
from engine.runtime.record import lines_of, rows_of
from engine.tools.report import build_report
from engine.tools.simulator import start_environment
from engine.tools.smtp_sink import SmtpSink
from tests.workflows.harness import compile_store, until, write_templates

RULES = """
journeys:
  welcome:
    trigger: customer.signed_up
    goal: order.placed
    goal_within: 3 days
    holdout: 20%
    steps:
      - split subject:
          plain 50%:
            - send welcome
          playful 50%:
            - send welcome-playful
      - wait 5 days
      - send nudge
"""
N, BUYERS = 12, 4  # customers; the first BUYERS order on the first day (converted)


@pytest.fixture(scope="module")
async def env():
    env = await start_environment()
    yield env
    await env.shutdown()


@pytest.fixture
def templates(tmp_path):
    return write_templates(tmp_path / "templates", ["welcome", "welcome-playful", "nudge"])


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = await open_ledger(None, tmp_path / "ledger.sqlite")
    else:
        url = request.getfixturevalue("postgres_url")
        table = request.getfixturevalue("pg_table")
        led = await open_ledger(url, tmp_path / "unused.sqlite", table=table)
    yield led
    await led.close()


async def _statuses(env, customers) -> dict[str, dict]:
    out = {}
    for cid in customers:
        handle = env.client.get_workflow_handle(customer_workflow_id(cid))
        out[cid] = await handle.query("status")
    return out


async def _all_ended(env, customers) -> bool:
    for status in (await _statuses(env, customers)).values():
        if status["active"] or not any(line["action"] == "end" for line in status["journal"]):
            return False
    return True


async def run_customers(env, store, templates, ledger, then, days: int = 6) -> None:
    """Every customer signs up, the buyers order at once, ``days`` pass: each journey has
    ended. Then ``then(journal, sink)`` runs while the worker still does: each customer's
    measured journal lines, and the SMTP sink. (The worker closes ``ledger`` at the end.)"""
    sink = SmtpSink().start()
    run = uuid.uuid4().hex[:6]
    queue, customers = f"q-{run}", [f"r{run}-{i}" for i in range(N)]
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
    try:
        async with assemble(env.client, store, smtp, ledger, queue, templates_dir=templates):
            for cid in customers:
                profile = {"email": f"{cid}@example.test"}
                await send_event(
                    env.client,
                    {"type": "customer.signed_up", "customer_id": cid, "customer": profile},
                    task_queue=queue,
                )
            for cid in customers[:BUYERS]:
                await send_event(
                    env.client, {"type": "order.placed", "customer_id": cid}, task_queue=queue
                )
            if days:
                await env.sleep(timedelta(days=days))
            await until(lambda: _all_ended(env, customers), timeout=60)
            journal = {
                cid: [line for line in status["journal"] if line["action"] in RECORDED_ACTIONS]
                for cid, status in (await _statuses(env, customers)).items()
            }
            await then(journal, sink)
    finally:
        sink.stop()


async def _keys(ledger) -> list[tuple[str, int]]:
    """(customer id, line number) of every row, straight from the table."""
    if getattr(ledger, "path", None):
        with sqlite3.connect(ledger.path) as conn:
            rows = conn.execute(f"SELECT customer_id, seq FROM {ledger.records}").fetchall()
    else:
        import psycopg

        async with await psycopg.AsyncConnection.connect(ledger.database_url) as conn:
            cur = await conn.execute(f"SELECT customer_id, seq FROM {ledger.records}")
            rows = await cur.fetchall()
    return sorted((cid, int(seq)) for cid, seq in rows)


def _expected(journal: dict) -> list[tuple[str, int]]:
    return sorted((cid, line["seq"]) for cid, lines in journal.items() for line in lines)


async def test_every_measured_line_is_recorded_once_and_reports_the_same(env, templates, ledger):
    async def check(journal, sink):
        actions = {line["action"] for lines in journal.values() for line in lines}
        assert actions == {"start", "split", "send", "end"}
        await until(lambda: _have(ledger, len(_expected(journal))))
        assert await _keys(ledger) == _expected(journal)  # each line once

        report = build_report(lines_of(await ledger.read_journal()))
        assert report == build_report([line for lines in journal.values() for line in lines])
        welcome = report["journeys"][0]
        assert (welcome["entered"], welcome["converted"]) == (N, BUYERS)

    await run_customers(env, compile_store(RULES, templates), templates, ledger, check)


async def _have(ledger, n: int) -> bool:
    return len(await _keys(ledger)) >= n


async def test_writing_a_batch_again_changes_nothing(ledger):
    at = "2030-01-01T00:00:00Z"
    inp = RecordInput(
        "c-1",
        "ep",
        [
            {"seq": 1, "at": at, "journey": "j", "instance": "j:1", "action": "start"},
            {"seq": 2, "at": at, "journey": "j", "instance": "j:1", "action": "split",
             "experiment": "x", "variant": "b", "variants": ["a", "b"]},
            {"seq": 3, "at": at, "journey": "j", "instance": "j:1", "action": "send",
             "template": "t", "status": "suppressed", "reason": "capped"},
            {"seq": 4, "at": at, "journey": "j", "instance": "j:1", "action": "end",
             "reason": "goal", "converted": True},
        ],
    )  # fmt: skip
    await ledger.append_journal(rows_of(inp))
    await ledger.append_journal(rows_of(inp))  # the local activity ran twice
    base = {"customer_id": "c-1", "instance": "ep/j:1", "journey": "j"}
    assert lines_of(await ledger.read_journal()) == [
        {**base, "action": "start", "holdout": False},
        {**base, "action": "end", "converted": True},
        {**base, "action": "split", "experiment": "x", "variant": "b", "variants": ["a", "b"]},
        {"customer_id": "", "instance": "", "journey": "j", "action": "send", "template": "t",
         "status": "suppressed", "reason": "capped", "count": 1},
    ]  # fmt: skip
    later = await ledger.read_journal("2030-01-01T00:00:01Z")
    assert later == {"instances": [], "splits": [], "orders": [], "messages": []}


async def test_a_locked_record_table_delays_the_record_and_loses_nothing(
    env, templates, postgres_url, pg_table, tmp_path, monkeypatch
):
    """Another connection holds a lock that blocks inserts into the record table (not
    the sent-ledger) while the journeys run: every email goes out once; the record
    catches up once the lock is gone (each customer retries on a durable timer)."""
    import psycopg

    monkeypatch.setenv("LIFECYCLE_LEDGER_TIMEOUT", "0.5")
    rules = (
        "journeys:\n  hello:\n    trigger: customer.signed_up\n    steps:\n      - send welcome\n"
    )
    ledger = await open_ledger(postgres_url, tmp_path / "unused.sqlite", table=pg_table)
    lock = psycopg.connect(postgres_url)

    async def check(journal, sink):
        sent = [line for lines in journal.values() for line in lines if line["action"] == "send"]
        delivered = sum(1 for line in sent if line["status"] == "sent")
        assert len(sink.messages) == delivered > 0  # the lock held up no email
        assert await _keys(ledger) == []  # and nothing could be recorded
        lock.commit()  # the lock is gone
        await env.sleep(timedelta(seconds=61))  # the first retry
        await until(lambda: _have(ledger, len(_expected(journal))), timeout=60)
        assert await _keys(ledger) == _expected(journal)

    try:
        lock.execute(f"LOCK TABLE {pg_table}_record IN SHARE MODE")  # blocks INSERT
        await run_customers(env, compile_store(rules, templates), templates, ledger, check, days=0)
    finally:
        lock.close()


async def test_a_customer_in_flight_at_the_deploy_records_from_its_next_answer(
    env, templates, tmp_path
):
    """A worker that keeps no record (as before this version: its answers say nothing of
    it) starts the customer; a worker that keeps it takes over mid-journey. The lines from
    its first lookup answer on are recorded, and the whole history replays."""
    from temporalio.worker import Replayer

    from engine.runtime.settings import Settings
    from engine.runtime.worker import workflow_runner
    from workflows.customer import CustomerWorkflow

    rules = """
journeys:
  hello:
    trigger: customer.signed_up
    steps:
      - send welcome
      - wait for order.placed within 3 days:
          received:
            - send nudge
"""
    store = compile_store(rules, templates)
    sink = SmtpSink().start()
    queue, cid = f"q-{uuid.uuid4().hex[:6]}", f"takeover-{uuid.uuid4().hex[:6]}"
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
    path = tmp_path / "ledger.sqlite"
    handle = env.client.get_workflow_handle(customer_workflow_id(cid))
    try:
        old = Settings(record=False, max_cached_workflows=0)  # no sticky queue to wait on
        async with assemble(env.client, store, smtp, path, queue, settings=old):
            signup = {"type": "customer.signed_up", "customer_id": cid,
                      "customer": {"email": "t@example.test"}}  # fmt: skip
            await send_event(env.client, signup, task_queue=queue)
            await until(lambda: len(sink.messages) == 1)
            await until(lambda: _waiting(handle))
        async with assemble(env.client, store, smtp, await open_ledger(None, path), queue):
            # order.placed is no trigger: the customer asks the worker once its trigger
            # cache (60 s) is old, so let a minute pass first
            await env.sleep(timedelta(seconds=61))
            order = {"type": "order.placed", "customer_id": cid}
            await send_event(env.client, order, task_queue=queue)
            await until(lambda: _ended(handle), timeout=60)
            status = await handle.query("status")
            ledger = await open_ledger(None, path)
            try:
                await until(lambda: _have(ledger, 2))
                rows = await _keys(ledger)
            finally:
                await ledger.close()
    finally:
        sink.stop()
    journal = [(line["action"], line.get("template"), line["seq"]) for line in status["journal"]]
    assert [a[:2] for a in journal] == [
        ("start", None), ("send", "welcome"), ("send", "nudge"), ("end", None)
    ]  # fmt: skip
    # recorded from the new worker's first answer on: the nudge and the end, not before
    assert rows == [(cid, journal[2][2]), (cid, journal[3][2])]
    history = await handle.fetch_history()
    await Replayer(workflows=[CustomerWorkflow], workflow_runner=workflow_runner()).replay_workflow(
        history
    )


async def _waiting(handle) -> bool:
    active = (await handle.query("status"))["active"]
    return bool(active) and (active[0].get("waiting") or {}).get("kind") == "event"


async def _ended(handle) -> bool:
    status = await handle.query("status")
    return not status["active"] and any(line["action"] == "end" for line in status["journal"])
