"""Hand-written baseline: ``WelcomeWorkflow``: ``rules/onboarding.yaml``'s ``welcome-series``.

In: the sign-up event (``start_workflow`` input); later events by the ``event`` signal.
Out: the series' emails, via ``bench.handwritten.HandEmail``. See ``bench/handwritten.py``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.handwritten import Customer


@workflow.defn(name="BenchWelcomeWorkflow")
class WelcomeWorkflow(Customer):
    """rules/onboarding.yaml ``welcome-series``, written by hand, started with its sign-up
    event as input (goal and reentry aside: the benchmark sends neither
    ``subscription.started`` nor a second sign-up)."""

    @workflow.run
    async def run(self, event: dict) -> str:
        self._start(event)
        if not self.profile.get("marketing_opt_in"):
            return "skipped"
        j = "welcome-series"
        await self._send(j, "0", "welcome")
        await workflow.sleep(timedelta(days=2))
        orders = self.profile.get("orders_count")
        if (0 if orders is None else orders) == 0:
            await self._send(j, "2.then.0", "first-order-nudge", discount=10)
            if await self._wait_for("order.placed", 5 * 86400) is not None:
                await self._send(j, "2.then.1.received.0", "first-order-thanks")
            else:
                await self._send(j, "2.then.1.timeout.0", "first-order-last-call", discount=15)
        else:
            await self._send(j, "2.else_.0", "first-order-thanks")
        await workflow.sleep(timedelta(weeks=1))
        orders = self.profile.get("orders_count")
        if isinstance(orders, int | float) and orders >= 1:
            await self._send(j, "4.then.0", "club-invite")
        return "completed"
