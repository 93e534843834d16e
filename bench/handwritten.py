"""Hand-written Temporal workflows: the baselines the engine's benchmarks compare against.

In: nothing (imported by ``bench/bench_runtime.py`` and ``bench/bench_simulate.py``; a
workflow module must be importable, the sandbox refuses classes defined in ``__main__``).
Out: four workflow classes that do, in plain Temporal Python, what the rules-driven
``CustomerWorkflow`` does for the benchmark journeys, with the same email activity
(``send_email``), the same retry policy and timeouts, and events delivered by the same
``event`` signal (signal-with-start):

- ``JourneyWorkflow``: send -> 1 s timer -> wait for ``order.placed`` within 1 min -> send.
- ``EntityWorkflow``: counts the events it is signalled, no lookups, no journeys.
- ``WaitingWorkflow``: one 30-day timer (the memory benchmark's waiting journey).
- ``WelcomeWorkflow``: the steps of ``rules/onboarding.yaml``'s ``welcome-series``.

Each builds the same ``send_email`` payload as the engine (idempotency key, template
context with ``customer`` and ``trigger``, sender, unsubscribe link, Date), so the
activity does the same work on both sides.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.interpreter import SEND_HEARTBEAT, SEND_RETRY, SEND_TIMEOUT

SENDER = "Acme Shop <hello@acme.test>"
UNSUBSCRIBE = "https://acme.test/unsubscribe/{customer_id}"


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Customer:
    """Profile, inbox and the email step shared by the baselines (no journey interpreter)."""

    def __init__(self) -> None:
        self.customer_id = ""
        self.profile: dict = {}
        self.trigger: dict = {}
        self.inbox: list[dict] = []
        self.events_processed = 0

    def _take(self, event: dict) -> None:
        self.events_processed += 1
        if isinstance(event.get("customer"), dict):
            self.profile.update(event["customer"])

    async def _send(self, journey: str, step: str, template: str, **args) -> dict:
        context = {"customer": self.profile, "trigger": self.trigger, **args}
        payload = {
            "idempotency_key": f"{self.customer_id}/{journey}/{step}",
            "kind": "send",
            "template": template,
            "to": self.profile.get("email", ""),
            "sender": SENDER,
            "customer_id": self.customer_id,
            "journey": journey,
            "context": context,
            "unsubscribe_url": UNSUBSCRIBE.replace("{customer_id}", self.customer_id),
            "sent_at": _iso(workflow.now()),
        }
        return await workflow.execute_activity(
            "send_email",
            payload,
            start_to_close_timeout=SEND_TIMEOUT,
            heartbeat_timeout=SEND_HEARTBEAT,
            retry_policy=SEND_RETRY,
        )

    async def _wait_for(self, event_type: str, seconds: float) -> dict | None:
        """The first ``event_type`` event that arrives from now on, or None at the timeout."""
        while self.inbox:  # earlier events update the profile but do not count
            self._take(self.inbox.pop(0))
        self.received: dict | None = None

        def arrived() -> bool:
            while self.inbox:
                event = self.inbox.pop(0)
                self._take(event)
                if event.get("type") == event_type:
                    self.received = event
                    return True
            return False

        try:
            await workflow.wait_condition(arrived, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return None
        return self.received


@workflow.defn(name="BenchJourneyWorkflow")
class JourneyWorkflow(_Customer):
    """send welcome -> wait 1 s -> wait for order.placed within 1 min -> send welcome."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False

    @workflow.run
    async def run(self, customer_id: str) -> str:
        self.customer_id = customer_id
        await workflow.wait_condition(lambda: bool(self.inbox))
        first = self.inbox.pop(0)
        self._take(first)
        self.trigger = first.get("data") or {}
        await self._send("bench-journey", "0", "welcome")
        await workflow.sleep(timedelta(seconds=1))
        self.waiting = True
        received = await self._wait_for("order.placed", 60)
        self.waiting = False
        await self._send("bench-journey", "3", "welcome")
        return "received" if received else "timeout"

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.inbox.append(event)

    @workflow.query(name="waiting")
    def is_waiting(self) -> bool:
        return self.waiting


@workflow.defn(name="BenchEntityWorkflow")
class EntityWorkflow(_Customer):
    """A customer entity that only counts its events (no plan lookup, no journeys)."""

    @workflow.run
    async def run(self, customer_id: str) -> None:
        self.customer_id = customer_id
        while True:
            await workflow.wait_condition(lambda: bool(self.inbox))
            self._take(self.inbox.pop(0))

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.inbox.append(event)

    @workflow.query(name="events_processed")
    def processed(self) -> int:
        return self.events_processed


@workflow.defn(name="BenchWaitingWorkflow")
class WaitingWorkflow(_Customer):
    """Takes its trigger event, then waits 30 days."""

    @workflow.run
    async def run(self, customer_id: str) -> None:
        self.customer_id = customer_id
        await workflow.wait_condition(lambda: bool(self.inbox))
        self._take(self.inbox.pop(0))
        await workflow.sleep(timedelta(days=30))

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.inbox.append(event)

    @workflow.query(name="events_processed")
    def processed(self) -> int:
        return self.events_processed


@workflow.defn(name="BenchWelcomeWorkflow")
class WelcomeWorkflow(_Customer):
    """rules/onboarding.yaml ``welcome-series``, written by hand (goal and reentry aside:
    the benchmark sends neither ``subscription.started`` nor a second sign-up)."""

    @workflow.run
    async def run(self, customer_id: str) -> str:
        self.customer_id = customer_id
        await workflow.wait_condition(lambda: bool(self.inbox))
        first = self.inbox.pop(0)
        self._take(first)
        self.trigger = first.get("data") or {}
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

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.inbox.append(event)
