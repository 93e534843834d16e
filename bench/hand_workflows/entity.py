"""Hand-written baseline: ``EntityWorkflow``: a customer entity that only counts its events.

In: events by the ``event`` signal (signal-with-start). Out: the ``events_processed``
query. See ``bench/handwritten.py``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.handwritten import Customer


@workflow.defn(name="BenchEntityWorkflow")
class EntityWorkflow(Customer):
    """A customer entity that only counts its events (no plan lookup, no journeys)."""

    @workflow.run
    async def run(self, customer_id: str) -> None:
        self.customer_id = customer_id
        while True:
            await workflow.wait_condition(lambda: bool(self.inbox))
            self._take(self.inbox.pop(0))

    @workflow.query(name="events_processed")
    def processed(self) -> int:
        return self.events_processed
