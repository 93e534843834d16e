"""The sent-ledger: which emails have gone out, and which attempt may send one now.

In: a ``DATABASE_URL`` (PostgreSQL, through psycopg 3) or a SQLite file path; the longest
wait for the database (``LIFECYCLE_LEDGER_TIMEOUT`` seconds, default 5).
Out: a ``Ledger`` with ``get(key) -> LedgerEntry | None``, ``claim(key, owner, lease) ->
Claim``, ``release(key, owner)``, ``record(...)``, ``suppressed(address)`` /
``suppress(address, detail)`` (the shared suppression list, ``<table>_suppressed``: an
address that hard-bounced is suppressed for every customer id), ``append_journal(rows)`` /
``read_journal(since)`` (the durable record of journeys, ``<table>_record``:
``engine.runtime.record``) and ``close()``; ``LedgerError`` when the database cannot
answer within the timeout (locked, slow, unreachable).

Activities run at least once: a worker that dies after SMTP's 250 and before the
activity returns would send the email again on retry, and an attempt that Temporal timed
out may still be running while its retry starts. So the email activity claims the key
before sending (a row in ``<table>_claim``: owner = one attempt's token, and a lease) and
records it right after. A claim is taken when the key has no claim, when its lease has
run out (the attempt that held it is dead or gave up) or when it is already the caller's;
while another attempt's lease runs, ``claim`` answers with that owner and the caller must
not send. Every claim also reads the record in the same transaction, so a key that was
sent in the meantime is reported, not sent again. The first record for a key wins; later
ones are ignored.

Every operation is bounded: SQLite's busy timeout, PostgreSQL's ``lock_timeout`` and
``statement_timeout``, and a wait for this process's own connection, each at most the
ledger timeout, so a locked ledger makes the operation fail quickly instead of hanging.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_TABLE = "sent_ledger"
TIMEOUT_ENV = "LIFECYCLE_LEDGER_TIMEOUT"
DEFAULT_TIMEOUT = 5.0  # seconds; below the email activity's heartbeat timeout (15 s)
# 56 characters, so that "<table>_claim" stays within PostgreSQL's 63.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,55}")


class LedgerError(Exception):
    """The ledger cannot be opened or used."""


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    status: str  # "sent" | "bounced"
    message_id: str
    subject: str
    to: str
    detail: str = ""
    recorded_at: str = ""  # ISO 8601 UTC


@dataclass(frozen=True)
class Claim:
    """The answer to ``claim``: the key's record if it has one; else who holds the claim
    and for how many more seconds."""

    entry: LedgerEntry | None
    owner: str
    expires_in: float
    mine: bool  # the caller holds the claim (and the key has no record)


def ledger_timeout(env=None) -> float:
    """``LIFECYCLE_LEDGER_TIMEOUT`` in seconds (default 5), read through
    ``engine.runtime.settings``."""
    from engine.runtime.settings import SettingsError, setting

    try:
        return setting("ledger_timeout", env)
    except SettingsError as err:
        raise LedgerError(str(err)) from None


class Ledger:
    """Interface of both back ends."""

    timeout: float = DEFAULT_TIMEOUT

    async def get(self, key: str) -> LedgerEntry | None:
        raise NotImplementedError

    async def claim(self, key: str, owner: str, lease: float) -> Claim:
        """Take (or renew) the right to send ``key`` for ``lease`` seconds."""
        raise NotImplementedError

    async def release(self, key: str, owner: str) -> None:
        """Give a claim up early (nothing was sent); no-op when ``owner`` does not hold it."""
        raise NotImplementedError

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
        raise NotImplementedError

    async def suppressed(self, address: str) -> str | None:
        """Why ``address`` (any case) is suppressed (the detail of its first hard bounce),
        or None. Shared by every customer id that uses the address (CONTRACT.md §6)."""
        return None

    async def suppress(self, address: str, detail: str) -> None:
        """Suppress ``address`` for every customer; the first detail is kept."""

    async def append_journal(self, rows: list[tuple]) -> None:
        """Add record rows (``engine.runtime.record.rows_of``); a row already there (same
        customer, epoch and line number) is left as it is."""
        raise NotImplementedError

    async def read_journal(self, since: str = "") -> dict[str, list[tuple]]:
        """What a report needs of the rows at or after ``since`` (ISO 8601 UTC; "" = all):
        ``_READ_RECORD``'s queries by name, each answer's rows."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_table(table: str) -> str:
    # The name is put into SQL text (it cannot be a parameter), so it must be plain.
    if not _TABLE_NAME.fullmatch(table):
        raise LedgerError(f"invalid ledger table name {table!r}")
    return table


_COLUMNS = "key, status, message_id, subject, recipient, detail, recorded_at"
_ENTRY_TABLE = (
    "key TEXT PRIMARY KEY, status TEXT NOT NULL, message_id TEXT NOT NULL,"
    " subject TEXT NOT NULL, recipient TEXT NOT NULL, detail TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL"
)


# Addresses that hard-bounced (5xx), for every customer id that uses them.
_SUPPRESSION = "address TEXT PRIMARY KEY, detail TEXT NOT NULL, recorded_at TEXT NOT NULL"

# The durable record of journeys (engine.runtime.record): one row per journal line that
# measurement needs, keyed by the line's number in its customer entity, so writing a
# batch again (a local activity that ran twice) changes nothing.
RECORD_COLUMNS = (
    "customer_id, epoch, seq, at, journey, instance, action, template, status, reason,"
    " experiment, variant, holdout, converted, line"
)
_RECORD_TABLE = (
    "customer_id TEXT NOT NULL, epoch TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL,"
    " journey TEXT NOT NULL, instance TEXT NOT NULL, action TEXT NOT NULL,"
    " template TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,"
    " experiment TEXT NOT NULL, variant TEXT NOT NULL, holdout SMALLINT NOT NULL,"
    " converted SMALLINT, line TEXT NOT NULL, PRIMARY KEY (customer_id, epoch, seq)"
)
# What a report reads (engine.runtime.record.lines_of), aggregated by the database: one
# row per journey instance (its start with the holdout, its end with `converted`), one
# per split, one per experiment with its variants in the order written, and the message
# counts by journey, template, status and reason. `?` is the earliest time kept.
_READ_RECORD = {
    "instances": (
        "SELECT customer_id, epoch, instance, journey,"
        " MAX(CASE WHEN action = 'start' THEN 1 ELSE 0 END),"
        " MAX(CASE WHEN action = 'start' THEN holdout ELSE 0 END),"
        " MAX(CASE WHEN action = 'end' THEN 1 ELSE 0 END),"
        " MAX(CASE WHEN action = 'end' THEN converted END)"
        " FROM {table} WHERE at >= ? AND action IN ('start', 'end')"
        " GROUP BY customer_id, epoch, instance, journey"
    ),
    "splits": (
        "SELECT customer_id, epoch, instance, journey, experiment, variant"
        " FROM {table} WHERE at >= ? AND action = 'split'"
    ),
    "orders": (
        "SELECT journey, experiment, MIN(line) FROM {table}"
        " WHERE at >= ? AND action = 'split' GROUP BY journey, experiment"
    ),
    "messages": (
        "SELECT journey, action, template, status, reason, COUNT(*) FROM {table}"
        " WHERE at >= ? AND action IN ('send', 'notify')"
        " GROUP BY journey, action, template, status, reason"
    ),
}


def _locked(what: str, timeout: float, exc: BaseException | None = None) -> LedgerError:
    detail = f": {exc}" if exc else ""
    return LedgerError(
        f"the ledger did not answer {what} within {timeout:g} s (locked or slow){detail};"
        f" {TIMEOUT_ENV} sets this wait"
    )


class SqliteLedger(Ledger):
    """SQLite in WAL mode; several processes may share the file."""

    def __init__(
        self, path: Path, table: str = DEFAULT_TABLE, timeout: float | None = None
    ) -> None:
        self.path = Path(path)
        self.table = _check_table(table)
        self.claims = f"{self.table}_claim"
        self.suppressions = f"{self.table}_suppressed"
        self.records = f"{self.table}_record"
        self.timeout = ledger_timeout() if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection used from worker threads, one statement at a time.
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=self.timeout
        )
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({_ENTRY_TABLE})")
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.claims} ("
                "key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)"
            )
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self.suppressions} ({_SUPPRESSION})")
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self.records} ({_RECORD_TABLE})")

    def _run(self, what: str, work):
        # Waiting for this process's own connection counts toward the timeout too: a
        # statement stuck on a lock must not make every other send wait behind it.
        if not self._lock.acquire(timeout=self.timeout):
            raise _locked(what, self.timeout)
        try:
            return work(self._conn)
        except sqlite3.OperationalError as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise _locked(what, self.timeout, exc) from None
        finally:
            self._lock.release()

    def _entry(self, conn, key: str) -> LedgerEntry | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return LedgerEntry(*row) if row else None

    def _claim(self, conn, key: str, owner: str, lease: float) -> Claim:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            entry = self._entry(conn, key)
            if entry is None:
                conn.execute(
                    f"INSERT INTO {self.claims} (key, owner, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
                    f" expires_at = excluded.expires_at WHERE {self.claims}.expires_at <= ?"
                    f" OR {self.claims}.owner = excluded.owner",
                    (key, owner, now + lease, now),
                )
            row = conn.execute(
                f"SELECT owner, expires_at FROM {self.claims} WHERE key = ?", (key,)
            ).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        holder, expires = row if row else ("", now)
        mine = entry is None and holder == owner
        return Claim(entry, holder, max(0.0, expires - now), mine)

    def _record(self, conn, row: tuple) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO NOTHING",
                row,
            )
            conn.execute(f"DELETE FROM {self.claims} WHERE key = ?", (row[0],))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def get(self, key: str) -> LedgerEntry | None:
        return await asyncio.to_thread(self._run, "a lookup", lambda c: self._entry(c, key))

    async def claim(self, key: str, owner: str, lease: float) -> Claim:
        return await asyncio.to_thread(
            self._run, "a claim", lambda c: self._claim(c, key, owner, lease)
        )

    async def release(self, key: str, owner: str) -> None:
        sql = f"DELETE FROM {self.claims} WHERE key = ? AND owner = ?"
        await asyncio.to_thread(self._run, "a release", lambda c: c.execute(sql, (key, owner)))

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
        row = (key, status, message_id, subject, to, detail, _now())
        await asyncio.to_thread(self._run, "a record", lambda c: self._record(c, row))

    async def suppressed(self, address: str) -> str | None:
        sql = f"SELECT detail FROM {self.suppressions} WHERE address = ?"

        def work(c):
            row = c.execute(sql, (address.strip().lower(),)).fetchone()
            return row[0] if row else None

        return await asyncio.to_thread(self._run, "a suppression lookup", work)

    async def suppress(self, address: str, detail: str) -> None:
        sql = (
            f"INSERT INTO {self.suppressions} (address, detail, recorded_at) VALUES (?, ?, ?)"
            " ON CONFLICT(address) DO NOTHING"
        )
        row = (address.strip().lower(), detail, _now())
        await asyncio.to_thread(self._run, "a suppression", lambda c: c.execute(sql, row))

    async def append_journal(self, rows: list[tuple]) -> None:
        sql = (
            f"INSERT INTO {self.records} ({RECORD_COLUMNS})"
            f" VALUES ({', '.join('?' * 15)}) ON CONFLICT DO NOTHING"
        )

        def work(c):
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(sql, rows)
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        await asyncio.to_thread(self._run, "a journal record", work)

    async def read_journal(self, since: str = "") -> dict[str, list[tuple]]:
        def work(c):
            return {
                name: c.execute(sql.format(table=self.records), (since,)).fetchall()
                for name, sql in _READ_RECORD.items()
            }

        return await asyncio.to_thread(self._run, "a journal read", work)

    async def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresLedger(Ledger):
    """PostgreSQL through one psycopg 3 async connection, reopened if it breaks."""

    def __init__(
        self, database_url: str, table: str = DEFAULT_TABLE, timeout: float | None = None
    ) -> None:
        self.database_url = database_url
        self.table = _check_table(table)
        self.claims = f"{self.table}_claim"
        self.suppressions = f"{self.table}_suppressed"
        self.records = f"{self.table}_record"
        self.timeout = ledger_timeout() if timeout is None else timeout
        # Two connections: the record's writes (engine.runtime.record) never wait behind,
        # or hold up, a send's claim.
        self._conns: dict = {}
        self._locks = {"main": asyncio.Lock(), "record": asyncio.Lock()}

    async def _connection(self, channel: str = "main"):
        import psycopg

        conn = self._conns.get(channel)
        if conn is None or conn.closed or conn.broken:
            ms = max(1, int(self.timeout * 1000))
            try:
                conn = self._conns[channel] = await psycopg.AsyncConnection.connect(
                    self.database_url,
                    autocommit=True,
                    connect_timeout=max(2, int(self.timeout + 0.999)),
                    # The server ends a wait for a lock, or any statement, that runs
                    # longer than the ledger timeout.
                    options=f"-c lock_timeout={ms} -c statement_timeout={ms}",
                )
            except psycopg.OperationalError as exc:
                raise LedgerError(f"cannot connect to the ledger database: {exc}") from None
        return conn

    async def _run(self, what: str, work, channel: str = "main"):
        import psycopg

        # The client-side bound backs the server's: it also covers waiting for this
        # process's connection and a server that does not answer at all.
        try:
            async with asyncio.timeout(self.timeout * 2 + 1):
                async with self._locks[channel]:
                    conn = await self._connection(channel)
                    try:
                        return await work(conn)
                    except BaseException:
                        if not conn.closed and conn.info.transaction_status.name != "IDLE":
                            await conn.close()  # mid-statement: do not reuse it
                        raise
        except TimeoutError:
            raise _locked(what, self.timeout) from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            raise _locked(what, self.timeout, exc) from None
        except psycopg.OperationalError as exc:
            raise LedgerError(f"the ledger database failed {what}: {exc}") from None

    async def open(self) -> PostgresLedger:
        async def create(conn):
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({_ENTRY_TABLE})")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.claims} ("
                "key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)"
            )
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {self.suppressions} ({_SUPPRESSION})")
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {self.records} ({_RECORD_TABLE})")

        await self._run("creating its tables", create)
        return self

    async def _entry(self, conn, key: str) -> LedgerEntry | None:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM {self.table} WHERE key = %s", (key,))
        row = await cur.fetchone()
        return LedgerEntry(*row) if row else None

    async def get(self, key: str) -> LedgerEntry | None:
        return await self._run("a lookup", lambda conn: self._entry(conn, key))

    async def claim(self, key: str, owner: str, lease: float) -> Claim:
        # The database's clock decides leases, so workers' clocks need not agree.
        async def work(conn):
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {self.claims} AS c (key, owner, expires_at)"
                    " VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s))"
                    " ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner,"
                    " expires_at = EXCLUDED.expires_at"
                    " WHERE c.expires_at <= clock_timestamp() OR c.owner = EXCLUDED.owner",
                    (key, owner, lease),
                )
                cur = await conn.execute(
                    "SELECT owner, extract(epoch FROM expires_at - clock_timestamp())"
                    f" FROM {self.claims} WHERE key = %s",
                    (key,),
                )
                row = await cur.fetchone()
                # Read after the claim: a record made before it is seen here.
                entry = await self._entry(conn, key)
            return entry, row

        entry, row = await self._run("a claim", work)
        holder, expires_in = (row[0], float(row[1])) if row else ("", 0.0)
        mine = entry is None and holder == owner
        return Claim(entry, holder, max(0.0, expires_in), mine)

    async def release(self, key: str, owner: str) -> None:
        sql = f"DELETE FROM {self.claims} WHERE key = %s AND owner = %s"
        await self._run("a release", lambda conn: conn.execute(sql, (key, owner)))

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
        async def work(conn):
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (key, status, message_id, subject, to, detail, _now()),
                )
                await conn.execute(f"DELETE FROM {self.claims} WHERE key = %s", (key,))

        await self._run("a record", work)

    async def suppressed(self, address: str) -> str | None:
        async def work(conn):
            cur = await conn.execute(
                f"SELECT detail FROM {self.suppressions} WHERE address = %s",
                (address.strip().lower(),),
            )
            row = await cur.fetchone()
            return row[0] if row else None

        return await self._run("a suppression lookup", work)

    async def suppress(self, address: str, detail: str) -> None:
        sql = (
            f"INSERT INTO {self.suppressions} (address, detail, recorded_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (address) DO NOTHING"
        )
        row = (address.strip().lower(), detail, _now())
        await self._run("a suppression", lambda conn: conn.execute(sql, row))

    async def append_journal(self, rows: list[tuple]) -> None:
        sql = (
            f"INSERT INTO {self.records} ({RECORD_COLUMNS})"
            f" VALUES ({', '.join(['%s'] * 15)}) ON CONFLICT DO NOTHING"
        )

        async def work(conn):
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(sql, rows)

        await self._run("a journal record", work, "record")

    async def read_journal(self, since: str = "") -> dict[str, list[tuple]]:
        async def work(conn):
            out = {}
            for name, sql in _READ_RECORD.items():
                sql = sql.format(table=self.records).replace("?", "%s")
                cur = await conn.execute(sql, (since,))
                out[name] = await cur.fetchall()
            return out

        return await self._run("a journal read", work, "record")

    async def close(self) -> None:
        for channel, lock in self._locks.items():
            async with lock:
                conn = self._conns.pop(channel, None)
                if conn is not None:
                    await conn.close()


async def open_ledger(
    database_url: str | None,
    sqlite_path: Path,
    table: str = DEFAULT_TABLE,
    timeout: float | None = None,
) -> Ledger:
    """PostgreSQL when ``database_url`` is set, else SQLite at ``sqlite_path``; ``timeout``
    defaults to ``LIFECYCLE_LEDGER_TIMEOUT``."""
    if database_url:
        return await PostgresLedger(database_url, table, timeout).open()
    return await asyncio.to_thread(SqliteLedger, Path(sqlite_path), table, timeout)
