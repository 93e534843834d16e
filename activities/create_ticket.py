"""Example custom activity: open a support ticket.

In: ``CreateTicketInput`` (``priority``, optional ``complaint`` and ``summary`` from the
rule; ``customer_id`` and ``idempotency_key`` filled by the runtime).
Out: ``{"id": "T-000123", "priority": "urgent", "status": "open"}``, a row in the
``tickets`` table of ``<data dir>/tickets.sqlite`` (``LIFECYCLE_DATA`` moves it).

A rule calls it as ``call create_ticket(priority="urgent", complaint=trigger.complaint_id)
as ticket`` and reads ``ticket.id`` afterwards. A retry (same idempotency key) returns the
ticket the first attempt created instead of opening a second one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.exceptions import ApplicationError

from engine.runtime.config import data_dir
from engine.runtime.registry import activity

PRIORITIES = ("low", "normal", "high", "urgent")


@dataclass
class CreateTicketInput:
    priority: str
    complaint: str = ""
    summary: str = ""
    customer_id: str = ""  # filled in by the runtime
    idempotency_key: str = ""  # filled in by the runtime; the same on every retry


@activity("create_ticket", timeout_seconds=30)
async def create_ticket(inp: CreateTicketInput) -> dict:
    """Open a support ticket for the customer; returns its id, priority and status."""
    if inp.priority not in PRIORITIES:
        # Retrying cannot fix a bad argument: fail the step at once, with the reason.
        raise ApplicationError(
            f"priority must be one of {', '.join(PRIORITIES)}, not {inp.priority!r}",
            type="InvalidInput",
            non_retryable=True,
        )
    ticket_id = await asyncio.to_thread(_insert_ticket, inp)
    return {"id": f"T-{ticket_id:06d}", "priority": inp.priority, "status": "open"}


def _insert_ticket(inp: CreateTicketInput) -> int:
    path = data_dir() / "tickets.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # several workers may share the file
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tickets ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " idempotency_key TEXT UNIQUE,"  # NULL (no key) never conflicts
            " customer_id TEXT NOT NULL, priority TEXT NOT NULL, complaint TEXT NOT NULL,"
            " summary TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        key = inp.idempotency_key or None
        # One write transaction: look the key up, insert only when new, so a retry
        # neither opens a second ticket nor burns a ticket number.
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = None
            if key is not None:
                row = conn.execute(
                    "SELECT id FROM tickets WHERE idempotency_key = ?", (key,)
                ).fetchone()
            if row is None:
                cur = conn.execute(
                    "INSERT INTO tickets (idempotency_key, customer_id, priority, complaint,"
                    " summary, status, created_at) VALUES (?, ?, ?, ?, ?, 'open', ?)",
                    (
                        key,
                        inp.customer_id,
                        inp.priority,
                        inp.complaint,
                        inp.summary,
                        datetime.now(UTC).isoformat(timespec="seconds"),
                    ),
                )
                row = (cur.lastrowid,)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(row[0])
    finally:
        conn.close()
