"""Hand-written baseline: ``WaitingWorkflow``: takes its trigger event, then waits 30 days.

In: one event by the ``event`` signal (signal-with-start). Out: the ``events_processed``
query. See ``bench/handwritten.py``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.handwritten import Customer


@workflow.defn(name="BenchWaitingWorkflow")
class WaitingWorkflow(Customer):
    """Takes its trigger event, then waits 30 days."""

    @workflow.run
    async def run(self, customer_id: str) -> None:
        self.customer_id = customer_id
        await workflow.wait_condition(lambda: bool(self.inbox))
        self._take(self.inbox.pop(0))
        await workflow.sleep(timedelta(days=30))

    @workflow.query(name="events_processed")
    def processed(self) -> int:
        return self.events_processed
