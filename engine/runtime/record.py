"""The durable record of journeys (CONTRACT.md §8): what ``lifecycle report --live``
counts, shared by every worker of a deployment.

In: the journal lines a customer entity hands to the ``record_journal`` local activity
(``dsl.contract.RecordInput``: ``start`` with ``holdout``, ``split`` with the variant,
``send`` / ``notify`` with status and reason, ``end`` with reason and ``converted``).
Out: rows in the ledger's database (``<ledger table>_record``, SQLite or PostgreSQL, next
to the sent-ledger: ``Ledger.append_journal``), and, read back, journal lines in the shape
``engine.tools.report.build_report`` takes (``lines_of``).

Why this design is the cheapest correct one:
- the lines are written by a *local* activity that the workflow schedules in the workflow
  task that wrote them: it runs in the worker and its result travels in that task's
  completion (a marker in history), so recording adds no server round trip and no timer;
  one activity carries every line of that task; what it does cost is one more activation
  and marker per such task (bench/bench_measure.py);
- a row's key is (customer id, entity epoch, line number): a local activity that runs
  twice (its workflow task failed after it ran) writes the same rows again, which the
  database ignores, so the record has each line once;
- lines not yet recorded live in the customer's state (bounded: ``RECORD_PENDING_LIMIT``),
  are carried across continue-as-new and are retried after ``RECORD_RETRY`` on a durable
  timer while the database is down, so an outage delays the record instead of losing it
  (beyond the bound, the oldest are dropped and counted in ``record_dropped``).
"""

from __future__ import annotations

import json

from temporalio import activity

from dsl.contract import RECORD, RecordInput


def _flag(value) -> int | None:
    return None if value is None else int(bool(value))


def rows_of(inp: RecordInput) -> list[tuple]:
    """The database rows of ``inp``'s lines (``engine.delivery.ledger.RECORD_COLUMNS``)."""
    rows = []
    for line in inp.lines:
        rows.append(
            (
                inp.customer_id,
                inp.epoch,
                int(line.get("seq", 0)),
                str(line.get("at", "")),
                str(line.get("journey", "")),
                str(line.get("instance", "")),
                str(line.get("action", "")),
                str(line.get("template", "")),
                str(line.get("status", "")),
                str(line.get("reason", "")),
                str(line.get("experiment", "")),
                str(line.get("variant", "")),
                int(bool(line.get("holdout"))),
                _flag(line.get("converted")),
                json.dumps(line, separators=(",", ":"), sort_keys=True, default=str),
            )
        )
    return rows


def lines_of(read: dict[str, list[tuple]]) -> list[dict]:
    """Journal lines for ``build_report`` from what ``Ledger.read_journal`` aggregated: a
    start and an end line per journey instance (as far as each was recorded), a split
    line per split (the first of each experiment with its variants in order) and a
    message line per (journey, template, status, reason) with its ``count``. An instance
    is named with its entity's epoch, so a customer id reused after a terminate counts as
    the new entity it is."""
    out: list[dict] = []
    for cid, epoch, instance, journey, started, holdout, ended, converted in read["instances"]:
        name = f"{epoch}/{instance}"
        if started:
            out.append(
                {"action": "start", "customer_id": cid, "instance": name, "journey": journey,
                 "holdout": bool(holdout)}
            )  # fmt: skip
        if ended:
            out.append(
                {"action": "end", "customer_id": cid, "instance": name, "journey": journey,
                 "converted": None if converted is None else bool(converted)}
            )  # fmt: skip
    orders = {}
    for journey, experiment, line in read["orders"]:
        variants = json.loads(line).get("variants") if line else None
        if variants:
            orders[(journey, experiment)] = variants
    for cid, epoch, instance, journey, experiment, variant in read["splits"]:
        line = {
            "action": "split",
            "customer_id": cid,
            "instance": f"{epoch}/{instance}",
            "journey": journey,
            "experiment": experiment,
            "variant": variant,
        }
        variants = orders.pop((journey, experiment), None)
        if variants:
            line["variants"] = variants
        out.append(line)
    for journey, action, template, status, reason, count in read["messages"]:
        out.append(
            {"action": action, "customer_id": "", "instance": "", "journey": journey,
             "template": template, "status": status, "reason": reason, "count": int(count)}
        )  # fmt: skip
    return out


class RecordActivities:
    """The ``record_journal`` local activity over a ``Ledger``."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger

    @activity.defn(name=RECORD)
    async def record_journal(self, inp: RecordInput) -> None:
        await self.ledger.append_journal(rows_of(inp))
