"""Hand-written Temporal workflows and email activity: the baselines the engine's benchmarks
compare against.

In: nothing (imported by ``bench/bench_runtime.py``, ``bench/bench_simulate.py`` and
the workflows in ``bench/hand_workflows/``).
Out: what a good engineer would write by hand for the benchmark journeys:

- ``HandEmail.send_email`` (activity ``bench_send_email``): renders the same template
  files with the same Jinja environment (``make_environment``: sandbox, StrictUndefined,
  autoescape) and the same ``render_email`` (subject block, text part), builds the same
  MIME message (``build_message``), and sends it with aiosmtplib over **one reused
  connection**, in process. Variants for the benches to measure what the engine's
  guarantees cost: ``render="pool"`` renders in ``engine.delivery.render_pool`` (the
  process hop the engine makes for safety, issue 7), ``ledger=`` claims and records the
  idempotency key in the same sent-ledger as the engine.
- ``Customer``: the profile, inbox, ``event`` signal, send and wait-for steps the
  workflows share (deterministic code, passed through the sandbox).

The workflows, one module each under ``bench/hand_workflows/`` (the sandbox re-imports a
workflow's module for every new instance, so it holds only that workflow):

- ``welcome.WelcomeWorkflow``: ``rules/onboarding.yaml``'s ``welcome-series`` with
  ``workflow.sleep`` timers, started by a plain ``start_workflow`` with its sign-up event.
- ``journey.JourneyWorkflow``: send -> 1 s timer -> wait for ``order.placed`` within
  1 min -> send, fed by signal-with-start (the engine's way in).
- ``entity.EntityWorkflow``: counts the events it is signalled, no lookups, no journeys.
- ``waiting.WaitingWorkflow``: one 30-day timer (the memory benchmark's waiting journey).

Same retry policy and timeouts as the engine's sends; the template context is the same
(``customer``, ``trigger``, the ``with`` arguments, ``unsubscribe_url``), so rendering does
the same work on both sides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import aiosmtplib
    from temporalio.exceptions import ApplicationError

    from engine.delivery.message import (
        TemplateRenderError,
        address_of,
        build_message,
        render_email,
    )
    from engine.delivery.templates import TemplateSet, make_environment

SENDER = "Acme Shop <hello@acme.test>"
UNSUBSCRIBE = "https://acme.test/unsubscribe/{customer_id}"
HAND_SEND = "bench_send_email"
# The engine's send settings (workflows/customer.py), copied: the baseline stands alone.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=["TemplateError"],
)
SEND_TIMEOUT = timedelta(seconds=60)


# The baseline and its variants: name -> (render, with the sent-ledger).
VARIANTS = {
    "hand": ("inline", False),
    "hand+pool": ("pool", False),  # renders in the engine's render process pool
    "hand+ledger": ("inline", True),  # claims and records each send in the SQLite ledger
}


@dataclass
class HandEmailInput:
    key: str  # customer/journey/step: the Message-ID is derived from it
    template: str
    to: str
    customer_id: str
    journey: str
    context: dict = field(default_factory=dict)
    unsubscribe_url: str = ""
    sent_at: str = ""


class HandEmail:
    """The hand-written email activity: in-process render, one reused SMTP connection."""

    def __init__(self, templates_dir, host: str, port: int, render: str = "inline", ledger=None):
        self.templates = TemplateSet.read(templates_dir)
        self.env = make_environment(self.templates)
        self.render = render  # "inline" | "pool"
        self.ledger = ledger
        self.host, self.port = host, port
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, start_tls=False)
            await self._smtp.connect()
        return self._smtp

    @activity.defn(name=HAND_SEND)
    async def send_email(self, inp: HandEmailInput) -> dict:
        if self.ledger is not None:
            claim = await self.ledger.claim(inp.key, activity.info().activity_id, 120.0)
            if claim.entry is not None:
                return {"status": "duplicate", "subject": claim.entry.subject}
        variables = {**inp.context, "unsubscribe_url": inp.unsubscribe_url}
        try:
            if self.render == "pool":
                from engine.delivery.render_pool import shared_pool

                rendered = await shared_pool().render_async(self.templates, inp.template, variables)
            else:
                rendered = render_email(self.env, inp.template, variables)
        except TemplateRenderError as exc:
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from None
        message = build_message(
            rendered,
            sender=SENDER,
            to=inp.to,
            idempotency_key=inp.key,
            journey=inp.journey,
            customer_id=inp.customer_id,
            unsubscribe_url=inp.unsubscribe_url,
            sent_at=inp.sent_at,
        )
        async with self._lock:
            smtp = await self._connection()
            try:
                await smtp.sendmail(address_of(SENDER), [address_of(inp.to)], message.as_bytes())
            except (aiosmtplib.SMTPServerDisconnected, OSError):
                self._smtp = None
                raise
        if self.ledger is not None:
            await self.ledger.record(
                inp.key, "sent", message["Message-ID"], rendered.subject, inp.to
            )
        return {"status": "sent", "subject": rendered.subject}

    async def close(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            await self._smtp.quit()
        self._smtp = None
        if self.ledger is not None:
            await self.ledger.close()


class Customer:
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

    def _start(self, event: dict) -> None:
        self.customer_id = event["customer_id"]
        self._take(event)
        self.trigger = event.get("data") or {}

    async def _send(self, journey: str, step: str, template: str, **args) -> dict:
        inp = HandEmailInput(
            key=f"{self.customer_id}/{journey}/{step}",
            template=template,
            to=self.profile.get("email", ""),
            customer_id=self.customer_id,
            journey=journey,
            context={"customer": self.profile, "trigger": self.trigger, **args},
            unsubscribe_url=UNSUBSCRIBE.replace("{customer_id}", self.customer_id),
            sent_at=workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return await workflow.execute_activity(
            HAND_SEND, inp, start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY
        )

    async def _wait_for(self, event_type: str, seconds: float) -> dict | None:
        """The first ``event_type`` event that arrives from now on, or None at the timeout."""
        while self.inbox:  # earlier events update the profile but do not count
            self._take(self.inbox.pop(0))
        received: list[dict] = []

        def arrived() -> bool:
            while self.inbox:
                event = self.inbox.pop(0)
                self._take(event)
                if event.get("type") == event_type:
                    received.append(event)
                    return True
            return False

        try:
            await workflow.wait_condition(arrived, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return None
        return received[0]

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.inbox.append(event)
