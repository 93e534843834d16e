"""Shared pieces for workflow tests: a time-skipping environment, a real SMTP sink, the
real email activity and a worker over a plan built by hand or compiled from YAML text."""

from __future__ import annotations

import shutil
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from dsl.ir import Expr, Journey, Origin, Plan, Reentry, Settings
from engine.activities import EmailActivities
from engine.ledger import open_ledger
from engine.runtime import PlanStore, build_worker
from engine.smtp import SmtpSettings
from engine.smtp_sink import SmtpSink

TS_SERVER = shutil.which("temporal-test-server")
O = Origin("rules/test.yaml", 1, 1)


def expr(tree: list, src: str = "") -> Expr:
    return Expr(src or str(tree), tree)


def path(scope: str, *names: str) -> list:
    return ["path", scope, list(names)]


def lit(value) -> list:
    return ["lit", value]


def journey(name: str, trigger: str, steps: list, **kw) -> Journey:
    j = Journey(
        name=name,
        trigger=trigger,
        steps=steps,
        origin=O,
        sender="Acme <hello@acme.test>",
        unsubscribe_url="https://acme.test/u/{customer_id}",
        reentry=kw.pop("reentry", Reentry()),
        **kw,
    )
    j.hash = j.compute_hash()
    return j


def plan(*journeys: Journey) -> Plan:
    return Plan(Settings(), {j.name: j for j in journeys})


@asynccontextmanager
async def engine_worker(env, store: PlanStore, templates_dir: Path, tmp_path: Path, sink=None):
    """A worker on a fresh task queue; yields (task_queue, sink)."""
    own_sink = sink is None
    sink = sink or SmtpSink().start()
    ledger = await open_ledger(None, tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.sqlite")
    email = EmailActivities(templates_dir, SmtpSettings(host="127.0.0.1", port=sink.port), ledger)
    queue = f"test-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(env.client, store, email, task_queue=queue):
            yield queue, sink
    finally:
        await email.close()
        if own_sink:
            sink.stop()
