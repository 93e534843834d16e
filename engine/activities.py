"""The Temporal email activity.

In: ``SendEmailInput`` (built by the workflow from a ``send`` / ``notify`` step), plus
what the worker builds once: the templates folder, ``SmtpSettings`` and a ``Ledger``.
Out: ``SendEmailResult`` with status ``sent``, ``duplicate`` (the ledger already had the
key: nothing rendered, nothing sent) or ``bounced`` (the server refused with 5xx);
``ApplicationError`` type ``TemplateError`` (non-retryable) when the template fails, type
``SmtpUnavailable`` (retryable) when the mail server cannot take the message now.

Test-only fault injection: with ``LIFECYCLE_FAULT_PAUSE_AFTER_SEND=<seconds>`` set, the
activity sleeps that long after recording the send and before returning, so a crash
test can kill the worker in exactly the window the sent-ledger protects. Never set it in
production.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.email import AddressError, TemplateRenderError, address_of, build_message
from engine.ledger import Ledger
from engine.smtp import SmtpBounceError, SmtpClient, SmtpSettings, SmtpUnavailableError
from engine.templates import FolderTemplates

SEND_EMAIL = "send_email"
FAULT_PAUSE_ENV = "LIFECYCLE_FAULT_PAUSE_AFTER_SEND"
HEARTBEAT_EVERY = 5.0  # seconds; well under the workflow's heartbeat timeout


@dataclass
class SendEmailInput:
    idempotency_key: str  # unique per journey instance + step; same on every retry
    kind: str  # "send" (to the customer) | "notify" (to a team address)
    template: str  # template name: templates/<name>.html.j2
    to: str
    sender: str
    customer_id: str
    journey: str
    context: dict = field(default_factory=dict)
    unsubscribe_url: str = ""
    sent_at: str = ""  # ISO 8601 UTC from workflow.now(): the Date header


@dataclass
class SendEmailResult:
    status: str  # "sent" | "duplicate" | "bounced"
    message_id: str
    subject: str
    to: str
    detail: str = ""


class EmailActivities:
    """Holds the templates, the render pool, the SMTP connection and the ledger.

    ``templates``: where the template set comes from, an object whose ``current()`` gives
    an ``engine.templates.TemplateSet`` (the worker passes ``PlanStore.template_source()``,
    so only a set validated with the rules is rendered); by default the folder as it is
    at each send. ``renderer``: an ``engine.render_pool.RenderPool`` (default: the
    process's shared one, limits from the environment)."""

    def __init__(
        self,
        templates_dir: str | Path,
        smtp: SmtpSettings,
        ledger: Ledger,
        templates=None,
        renderer=None,
    ) -> None:
        self.templates = templates if templates is not None else FolderTemplates(templates_dir)
        self.renderer = renderer
        self.smtp = SmtpClient(smtp)
        self.ledger = ledger

    async def _render(self, template: str, variables: dict):
        """Render off the event loop, in a render process under its time and memory limits."""
        from engine.render_pool import shared_pool

        renderer = self.renderer or shared_pool()
        templates = await asyncio.to_thread(self.templates.current)
        return await _with_heartbeats(renderer.render_async(templates, template, variables))

    @activity.defn(name=SEND_EMAIL)
    async def send_email(self, inp: SendEmailInput) -> SendEmailResult:
        known = await self.ledger.get(inp.idempotency_key)
        if known is not None:
            detail = f"already {known.status}" + (f": {known.detail}" if known.detail else "")
            return SendEmailResult("duplicate", known.message_id, known.subject, known.to, detail)

        variables = dict(inp.context)
        variables["unsubscribe_url"] = inp.unsubscribe_url if inp.kind == "send" else ""
        try:
            rendered = await self._render(inp.template, variables)
        except TemplateRenderError as exc:
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from None

        try:
            message = build_message(
                rendered,
                sender=inp.sender,
                to=inp.to,
                idempotency_key=inp.idempotency_key,
                journey=inp.journey,
                customer_id=inp.customer_id,
                unsubscribe_url=inp.unsubscribe_url if inp.kind == "send" else "",
                sent_at=inp.sent_at,
            )
            recipient = address_of(inp.to)
        except AddressError as exc:
            if _is_sender_problem(inp.sender):
                # A bad From is a rules-file problem, the same for every customer.
                raise ApplicationError(
                    f"invalid sender: {exc}", type="InvalidSender", non_retryable=True
                ) from None
            # A customer without a usable address cannot be emailed; the journey goes on.
            return await self._finish(inp, "bounced", "", rendered.subject, str(exc))
        message_id = message["Message-ID"]

        send = self.smtp.send(address_of(inp.sender), [recipient], message.as_bytes())
        try:
            await _with_heartbeats(send)
        except SmtpBounceError as exc:
            return await self._finish(inp, "bounced", message_id, rendered.subject, str(exc))
        except SmtpUnavailableError as exc:
            raise ApplicationError(str(exc), type="SmtpUnavailable") from None
        return await self._finish(inp, "sent", message_id, rendered.subject, "")

    async def _finish(
        self, inp: SendEmailInput, status: str, message_id: str, subject: str, detail: str
    ) -> SendEmailResult:
        # Recorded before returning: a retry after a crash from here on is a no-op.
        await self.ledger.record(inp.idempotency_key, status, message_id, subject, inp.to, detail)
        pause = os.environ.get(FAULT_PAUSE_ENV)
        if pause:
            await asyncio.sleep(float(pause))
        return SendEmailResult(status, message_id, subject, inp.to, detail)

    async def close(self) -> None:
        await self.smtp.close()
        await self.ledger.close()


async def _with_heartbeats(coro: Awaitable[object]) -> object:
    """Await ``coro``, heartbeating before and every few seconds while it runs, so a dead
    worker is noticed through the heartbeat timeout and a slow server is not taken for one."""
    if not activity.in_activity():
        return await coro
    task = asyncio.ensure_future(coro)
    try:
        while True:
            activity.heartbeat()
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
    except asyncio.CancelledError:
        task.cancel()
        raise


def _is_sender_problem(sender: str) -> bool:
    try:
        address_of(sender)
    except AddressError:
        return True
    return False
