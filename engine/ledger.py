"""The sent-ledger: which emails have gone out, keyed by idempotency key.

In: a ``DATABASE_URL`` (PostgreSQL, through psycopg 3) or a SQLite file path.
Out: a ``Ledger`` with ``get(key) -> LedgerEntry | None``, ``record(...)`` and
``close()``.

Activities run at least once: a worker that dies after SMTP's 250 and before the
activity returns would send the email again on retry. The email activity looks the key
up before sending and records it right after, so a retry becomes a no-op. The first
record for a key wins; later ones are ignored.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_TABLE = "sent_ledger"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


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


class Ledger:
    """Interface of both back ends."""

    async def get(self, key: str) -> LedgerEntry | None:
        raise NotImplementedError

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
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


class SqliteLedger(Ledger):
    """SQLite in WAL mode; several processes may share the file."""

    def __init__(self, path: Path, table: str = DEFAULT_TABLE) -> None:
        self.path = Path(path)
        self.table = _check_table(table)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection used from worker threads, one statement at a time.
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "key TEXT PRIMARY KEY, status TEXT NOT NULL, message_id TEXT NOT NULL,"
                " subject TEXT NOT NULL, recipient TEXT NOT NULL, detail TEXT NOT NULL,"
                " recorded_at TEXT NOT NULL)"
            )

    def _get(self, key: str) -> LedgerEntry | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM {self.table} WHERE key = ?", (key,)
            ).fetchone()
        return LedgerEntry(*row) if row else None

    def _record(self, row: tuple) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO NOTHING",
                row,
            )

    async def get(self, key: str) -> LedgerEntry | None:
        return await asyncio.to_thread(self._get, key)

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
        row = (key, status, message_id, subject, to, detail, _now())
        await asyncio.to_thread(self._record, row)

    async def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresLedger(Ledger):
    """PostgreSQL through one psycopg 3 async connection, reopened if it breaks."""

    def __init__(self, database_url: str, table: str = DEFAULT_TABLE) -> None:
        self.database_url = database_url
        self.table = _check_table(table)
        self._conn = None
        self._lock = asyncio.Lock()

    async def _connection(self):
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=10
                )
            except psycopg.OperationalError as exc:
                raise LedgerError(f"cannot connect to the ledger database: {exc}") from None
        return self._conn

    async def open(self) -> PostgresLedger:
        async with self._lock:
            conn = await self._connection()
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "key TEXT PRIMARY KEY, status TEXT NOT NULL, message_id TEXT NOT NULL,"
                " subject TEXT NOT NULL, recipient TEXT NOT NULL, detail TEXT NOT NULL,"
                " recorded_at TEXT NOT NULL)"
            )
        return self

    async def get(self, key: str) -> LedgerEntry | None:
        async with self._lock:
            conn = await self._connection()
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM {self.table} WHERE key = %s", (key,))
            row = await cur.fetchone()
        return LedgerEntry(*row) if row else None

    async def record(
        self, key: str, status: str, message_id: str, subject: str, to: str, detail: str = ""
    ) -> None:
        async with self._lock:
            conn = await self._connection()
            await conn.execute(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (key) DO NOTHING",
                (key, status, message_id, subject, to, detail, _now()),
            )

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


async def open_ledger(
    database_url: str | None, sqlite_path: Path, table: str = DEFAULT_TABLE
) -> Ledger:
    """PostgreSQL when ``database_url`` is set, else SQLite at ``sqlite_path``."""
    if database_url:
        return await PostgresLedger(database_url, table).open()
    return await asyncio.to_thread(SqliteLedger, Path(sqlite_path), table)
