"""A developer's activity cannot stall the engine: one that blocks its thread inside an
``async def`` does not delay another customer's email, and one that never returns is
stopped by its schedule-to-close timeout and reported (the journey ends ``failed`` with
the error in the journal). The real worker on the time-skipping server, a real SMTP sink;
what the sink received is what counts."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import pytest

from engine.runtime import registry
from engine.runtime.client import get_status, send_event
from engine.tools.simulator import start_environment
from tests.workflows.harness import compile_store, write_templates
from tests.workflows.test_durability import until, worker


@pytest.fixture
async def env():
    """A server per test, not per module: the first test's blocked activity (its thread
    outlives its worker) would hold the second test's time skipping."""
    env = await start_environment()
    yield env
    await env.shutdown()


started = threading.Event()  # the blocking activity is inside its blocking call
finished = threading.Event()  # ... and has come out of it
stop = threading.Event()  # set at the end of the module: lets stuck threads go


@dataclass
class BlockInput:
    customer_id: str = ""


async def blocks_its_thread(inp: BlockInput) -> dict:
    """Like ``time.sleep(90)`` in an ``async def``: blocks the thread it runs on."""
    started.set()
    stop.wait(timeout=10)
    finished.set()
    return {"ok": True}


async def never_returns(inp: BlockInput) -> dict:
    while not stop.is_set():
        time.sleep(0.05)  # blocking, and never giving its loop a chance either
    return {"ok": True}


@pytest.fixture(scope="module")
def activities():
    registry.activity("blocks_its_thread", timeout_seconds=30)(blocks_its_thread)
    registry.activity("never_returns", timeout_seconds=1, schedule_to_close_seconds=3)(
        never_returns
    )
    specs = {n: registry._REGISTRY.pop(n) for n in ("blocks_its_thread", "never_returns")}
    yield {**registry.load_registry(), **specs}
    stop.set()


RULES = """
journeys:
  slow:
    trigger: crm.sync
    steps:
      - call blocks_its_thread()
  stuck:
    trigger: crm.stuck
    steps:
      - call never_returns()
      - send never
  welcome:
    trigger: customer.signed_up
    steps:
      - send welcome
"""


async def test_a_blocking_activity_does_not_delay_another_customers_email(
    env,
    tmp_path,
    activities,
):
    templates = write_templates(tmp_path / "t", ["welcome", "never"])
    store = compile_store(RULES, templates, activities)
    async with worker(env, store, templates, tmp_path) as (queue, sink):
        await send_event(env.client, {"type": "crm.sync", "customer_id": "slow"}, queue)
        assert await asyncio.to_thread(started.wait, 10)
        t0 = time.monotonic()
        ann = {"email": "ann@example.test", "name": "Ann"}
        await send_event(
            env.client, {"type": "customer.signed_up", "customer_id": "ann", "customer": ann}, queue
        )
        (got,) = await asyncio.to_thread(sink.wait_for, 1, 30)
        waited = time.monotonic() - t0
        blocked_meanwhile = not finished.is_set()
        print(f"ann's email waited {waited:.2f} s while the activity blocked: {blocked_meanwhile}")
        assert got.rcpt_tos == ["ann@example.test"]
        assert blocked_meanwhile, "the email went out only after the blocking activity ended"


async def test_a_call_that_never_returns_is_stopped_and_reported(
    env,
    tmp_path,
    activities,
):
    templates = write_templates(tmp_path / "t", ["welcome", "never"])
    store = compile_store(RULES, templates, activities)
    async with worker(env, store, templates, tmp_path) as (queue, sink):
        await send_event(env.client, {"type": "crm.stuck", "customer_id": "stuck"}, queue)

        async def ended():
            status = await get_status(env.client, "stuck")
            return [a for a in status["journal"] if a["action"] == "end"]

        await until(ended, timeout=30)
        (end,) = await ended()
        assert (end["journey"], end["reason"]) == ("stuck", "failed")
        assert end["error_type"] == "Timeout"
        assert end["error"] == (
            "call never_returns() did not finish within its schedule-to-close timeout "
            "(3 s, all attempts together)"
        )
        assert end["origin"] == "rules/test.yaml:10:9"
        assert sink.messages == []  # "send never" after the failed call did not run
