"""The sent-ledger on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from engine.delivery.ledger import (
    LedgerEntry,
    LedgerError,
    PostgresLedger,
    SqliteLedger,
    ledger_timeout,
    open_ledger,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = await open_ledger(None, tmp_path / "ledger.sqlite")
        assert isinstance(led, SqliteLedger)
    else:
        url = request.getfixturevalue("postgres_url")
        table = request.getfixturevalue("pg_table")
        led = await open_ledger(url, tmp_path / "unused.sqlite", table=table)
        assert isinstance(led, PostgresLedger)
        assert not (tmp_path / "unused.sqlite").exists()
    yield led
    await led.close()


async def test_unknown_key_is_none(ledger):
    assert await ledger.get("nope") is None


async def test_record_then_get(ledger):
    await ledger.record("k-1", "sent", "<id@acme.test>", "Hello Ann", "ann@example.test")
    entry = await ledger.get("k-1")
    assert isinstance(entry, LedgerEntry)
    assert (entry.key, entry.status, entry.message_id, entry.subject, entry.to, entry.detail) == (
        "k-1",
        "sent",
        "<id@acme.test>",
        "Hello Ann",
        "ann@example.test",
        "",
    )
    assert entry.recorded_at.endswith("Z")


async def test_first_record_wins(ledger):
    await ledger.record("k-1", "bounced", "<a@x>", "S", "a@x.test", "550 no such user")
    await ledger.record("k-1", "sent", "<b@x>", "S2", "b@x.test")
    entry = await ledger.get("k-1")
    assert (entry.status, entry.message_id, entry.detail) == (
        "bounced",
        "<a@x>",
        "550 no such user",
    )


async def test_sqlite_ledger_is_shared_through_the_file(tmp_path):
    path = tmp_path / "sub" / "ledger.sqlite"
    a = await open_ledger(None, path)
    b = await open_ledger(None, path)
    try:
        await a.record("k", "sent", "<m@x>", "S", "t@x.test")
        assert (await b.get("k")).message_id == "<m@x>"
    finally:
        await a.close()
        await b.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_table_name_must_be_an_identifier(tmp_path):
    with pytest.raises(LedgerError, match="invalid ledger table name 'x; DROP TABLE y'"):
        SqliteLedger(tmp_path / "l.sqlite", table="x; DROP TABLE y")


async def test_postgres_unreachable_is_a_ledger_error(tmp_path):
    from engine.tools.smtp_sink import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(LedgerError, match="cannot connect to the ledger database"):
        await open_ledger(url, tmp_path / "x.sqlite")


async def test_claim_is_exclusive_while_its_lease_runs(ledger):
    first = await ledger.claim("k-1", "attempt-1", lease=30)
    assert (first.mine, first.owner, first.entry) == (True, "attempt-1", None)
    assert 25 < first.expires_in <= 30
    other = await ledger.claim("k-1", "attempt-2", lease=30)
    assert (other.mine, other.owner, other.entry) == (False, "attempt-1", None)
    again = await ledger.claim("k-1", "attempt-1", lease=30)  # renewing one's own claim
    assert again.mine


async def test_an_expired_claim_is_taken_over(ledger):
    await ledger.claim("k-1", "crashed-attempt", lease=0.2)
    await asyncio.sleep(0.3)
    taken = await ledger.claim("k-1", "attempt-2", lease=30)
    assert (taken.mine, taken.owner) == (True, "attempt-2")
    # The first attempt, had it survived, cannot send any more.
    assert not (await ledger.claim("k-1", "crashed-attempt", lease=30)).mine


async def test_a_recorded_key_cannot_be_claimed(ledger):
    await ledger.claim("k-1", "attempt-1", lease=0.1)
    await ledger.record("k-1", "sent", "<m@x>", "S", "t@x.test")
    await asyncio.sleep(0.2)
    claim = await ledger.claim("k-1", "attempt-2", lease=30)
    assert (claim.mine, claim.entry.status, claim.entry.message_id) == (False, "sent", "<m@x>")


async def test_release_lets_the_next_attempt_claim_at_once(ledger):
    await ledger.claim("k-1", "attempt-1", lease=30)
    await ledger.release("k-1", "someone-else")  # not theirs: no effect
    assert not (await ledger.claim("k-1", "attempt-2", lease=30)).mine
    await ledger.release("k-1", "attempt-1")
    assert (await ledger.claim("k-1", "attempt-2", lease=30)).mine


async def test_sqlite_write_lock_makes_operations_fail_within_the_timeout(tmp_path):
    path = tmp_path / "ledger.sqlite"
    led = await open_ledger(None, path, timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerError) as err:
            await led.claim("k-1", "attempt-1", lease=30)
        assert str(err.value).startswith(
            "the ledger did not answer a claim within 0.2 s (locked or slow): database is locked;"
        )
        assert await led.get("k-1") is None  # reads still work (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await led.claim("k-1", "attempt-1", lease=30)).mine
    await led.close()


async def test_postgres_table_lock_makes_a_record_fail_within_the_timeout(
    tmp_path, postgres_url, pg_table
):
    import psycopg

    led = await open_ledger(postgres_url, tmp_path / "x.sqlite", table=pg_table, timeout=0.2)
    holder = psycopg.connect(postgres_url)
    holder.execute(f"LOCK TABLE {pg_table} IN SHARE MODE")
    try:
        assert (await led.claim("k-1", "attempt-1", lease=30)).mine  # the claim table is free
        with pytest.raises(LedgerError, match="did not answer a record within 0.2 s"):
            await led.record("k-1", "sent", "<m@x>", "S", "t@x.test")
    finally:
        holder.rollback()
        holder.close()
    await led.record("k-1", "sent", "<m@x>", "S", "t@x.test")  # the connection still works
    assert (await led.get("k-1")).message_id == "<m@x>"
    await led.close()


def test_ledger_timeout_setting():
    assert ledger_timeout({}) == 5.0
    assert ledger_timeout({"LIFECYCLE_LEDGER_TIMEOUT": "0.5"}) == 0.5
    with pytest.raises(LedgerError, match="LIFECYCLE_LEDGER_TIMEOUT must be seconds, not 'x'"):
        ledger_timeout({"LIFECYCLE_LEDGER_TIMEOUT": "x"})
