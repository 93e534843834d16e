"""The sent-ledger on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest

from engine.ledger import LedgerEntry, LedgerError, PostgresLedger, SqliteLedger, open_ledger


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
    from engine.smtp_sink import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(LedgerError, match="cannot connect to the ledger database"):
        await open_ledger(url, tmp_path / "x.sqlite")
