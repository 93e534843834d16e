"""Hand-written baseline: ``JourneyWorkflow``: send, 1 s timer, wait for ``order.placed``, send.

In: events by the ``event`` signal (signal-with-start). Out: two emails, via
``bench.handwritten.HandEmail``; the ``waiting`` query. See ``bench/handwritten.py``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.handwritten import Customer


@workflow.defn(name="BenchJourneyWorkflow")
class JourneyWorkflow(Customer):
    """send welcome -> wait 1 s -> wait for order.placed within 1 min -> send welcome."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False

    @workflow.run
    async def run(self, customer_id: str) -> str:
        await workflow.wait_condition(lambda: bool(self.inbox))
        self._start(self.inbox.pop(0))
        await self._send("bench-journey", "0", "welcome")
        await workflow.sleep(timedelta(seconds=1))
        self.waiting = True
        received = await self._wait_for("order.placed", 60)
        self.waiting = False
        await self._send("bench-journey", "3", "welcome")
        return "received" if received else "timeout"

    @workflow.query(name="waiting")
    def is_waiting(self) -> bool:
        return self.waiting
