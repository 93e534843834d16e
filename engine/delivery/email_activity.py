"""The Temporal email activity.

In: ``SendEmailInput`` (``dsl.contract``, built by the workflow from a ``send`` / ``notify`` step), plus
what the worker builds once: the templates folder, ``SmtpSettings`` and a ``Ledger``.
Out: ``SendEmailResult`` with status ``sent``, ``duplicate`` (the ledger already had the
key: nothing rendered, nothing sent) or ``bounced`` (the server refused with 5xx);
``ApplicationError`` type ``TemplateError`` (non-retryable; ``details[0]`` holds the
``TemplateRenderError`` fields template, line, message, reason) when the template fails,
type ``SmtpUnavailable`` (retryable) when the mail server cannot take the message now, type
``LedgerUnavailable`` (retryable, nothing sent) when the ledger did not answer in time,
type ``SendInProgress`` (retryable, nothing sent) while another attempt holds the claim.

Exactly once, as far as SMTP allows (docs/reliability.md):

1. Claim before sending. The attempt claims the idempotency key in the ledger under a
   token of its own, with a lease (``LIFECYCLE_SEND_LEASE`` seconds, default 120, at
   least twice ``SMTP_TIMEOUT`` plus 10 s: longer than DATA can take). A key already
   recorded is a ``duplicate``; a live claim of another attempt (one that Temporal timed
   out but that may still be running, or one that just crashed) makes this attempt fail
   retryably without sending, until that attempt records or its lease runs out; after a
   real crash the lease runs out and a later attempt takes over, with the same Message-ID.
2. Check right before DATA. After RCPT the claim is renewed; if another attempt took it
   over (this one was slow past its lease), this attempt stops before DATA. From that
   check on, the lease covers the whole DATA.
3. One DATA per attempt (``SmtpClient.send``); an ambiguous failure after DATA began is
   ``SmtpUnavailable`` and the next attempt decides, guarded by the claim.
4. After the relay's 250 the record is retried (heartbeating, renewing the claim) until it
   is stored; once DATA has begun, a cancellation (Temporal timed the attempt out) is held
   back until the send and its record are done, so the retry finds the record.
5. Every ledger wait is bounded (``LIFECYCLE_LEDGER_TIMEOUT``, default 5 s, below the
   15 s heartbeat timeout) and heartbeats go on through every ledger and SMTP wait
   (every third of the heartbeat timeout, at most 5 s): a slow ledger makes an attempt
   fail retryably before it sends, never makes Temporal time it out while it sends.

What remains: a crash (or a lost connection) after the relay stored the message and
before the record: the next attempt sends it again, with the same Message-ID.

Test-only fault injection: with ``LIFECYCLE_FAULT_PAUSE_AFTER_SEND=<seconds>`` set, the
activity sleeps that long after recording the send and before returning, so a crash
test can kill the worker in exactly the window the sent-ledger protects. Never set it in
production.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from dsl.contract import SEND_EMAIL, SendEmailInput, SendEmailResult
from engine.delivery.ledger import Claim, Ledger, LedgerError
from engine.delivery.message import AddressError, TemplateRenderError, address_of, build_message
from engine.delivery.smtp import SmtpBounceError, SmtpClient, SmtpSettings, SmtpUnavailableError
from engine.delivery.templates import FolderTemplates
from engine.delivery.unsubscribe import Links

FAULT_PAUSE_ENV = "LIFECYCLE_FAULT_PAUSE_AFTER_SEND"
HEARTBEAT_EVERY = 5.0  # seconds at most; a third of the heartbeat timeout when that is shorter
LEASE_ENV = "LIFECYCLE_SEND_LEASE"
DEFAULT_LEASE = 120.0  # seconds an attempt's claim on a key lasts without renewal
RECORD_PATIENCE = 300.0  # seconds to keep retrying the record of a sent message
log = logging.getLogger(__name__)
__all__ = ["SEND_EMAIL", "EmailActivities", "SendEmailInput", "SendEmailResult", "send_lease"]


class EmailActivities:
    """Holds the templates, the render pool, the SMTP connection and the ledger.

    ``templates``: where the template set comes from, an object whose ``current()`` gives
    a ``dsl.templates.TemplateSet`` (the worker passes ``PlanStore.template_source()``,
    so only a set validated with the rules is rendered); by default the folder as it is
    at each send. ``renderer``: an ``engine.delivery.render_pool.RenderPool`` (default: the
    process's shared one, limits from the environment)."""

    def __init__(
        self,
        templates_dir: str | Path,
        smtp: SmtpSettings,
        ledger: Ledger,
        templates=None,
        renderer=None,
        links: Links | None = None,
    ) -> None:
        self.templates = templates if templates is not None else FolderTemplates(templates_dir)
        # Signs unsubscribe links; without one (tests of other things), a shop page is
        # used as given and no /u/ link is made.
        self.links = links
        self.renderer = renderer
        self.smtp = SmtpClient(smtp)
        self.ledger = ledger

    async def _render(self, template: str, variables: dict):
        """Render off the event loop, in a render process under its time and memory limits."""
        from engine.delivery.render_pool import shared_pool

        renderer = self.renderer or shared_pool()
        templates = await asyncio.to_thread(self.templates.current)
        return await _with_heartbeats(renderer.render_async(templates, template, variables))

    @activity.defn(name=SEND_EMAIL)
    async def send_email(self, inp: SendEmailInput) -> SendEmailResult:
        owner = _attempt_token()
        lease = send_lease(self.smtp.settings.timeout)
        claim = await self._claim(inp.idempotency_key, owner, lease)
        if claim.entry is not None:
            known = claim.entry
            detail = f"already {known.status}" + (f": {known.detail}" if known.detail else "")
            return SendEmailResult("duplicate", known.message_id, known.subject, known.to, detail)

        variables = dict(inp.context)
        page_link, header_link = self._unsubscribe_links(inp)
        variables["unsubscribe_url"] = page_link
        try:
            rendered = await self._render(inp.template, variables)
        except TemplateRenderError as exc:
            # The fields ride along as data (details[0]: template, line, message,
            # reason); the message keeps the FILE:LINE: text the journal shows.
            raise ApplicationError(
                str(exc), exc.as_dict(), type="TemplateError", non_retryable=True
            ) from None

        try:
            message = build_message(
                rendered,
                sender=inp.sender,
                to=inp.to,
                idempotency_key=inp.idempotency_key,
                journey=inp.journey,
                customer_id=inp.customer_id,
                unsubscribe_url=header_link,
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
            finish = self._finish(inp, "bounced", "", rendered.subject, str(exc))
            try:
                result = await _with_heartbeats(finish)
            except LedgerError as err:  # nothing was sent: the next attempt records it
                raise ApplicationError(str(err), type="LedgerUnavailable") from None
            await _fault_pause()
            return result
        message_id = message["Message-ID"]

        delivery = _Delivery(self, inp, owner, lease, message_id, rendered.subject)
        return await delivery.run(address_of(inp.sender), recipient, message.as_bytes())

    def _unsubscribe_links(self, inp: SendEmailInput) -> tuple[str, str]:
        """(``unsubscribe_url`` for the template, the ``List-Unsubscribe`` link): both empty
        for a notify or a transactional email (CONTRACT.md §5)."""
        if inp.kind != "send" or inp.message_class == "transactional":
            return "", ""
        if self.links is None:
            page = inp.unsubscribe_url.replace("{customer_id}", quote(inp.customer_id, ""))
            return page, page
        return self.links.for_customer(inp.customer_id, inp.public_url, inp.unsubscribe_url)

    async def _claim(self, key: str, owner: str, lease: float) -> Claim:
        """Claim ``key`` for this attempt or fail retryably; never sends."""
        try:
            claim = await _with_heartbeats(self.ledger.claim(key, owner, lease))
        except LedgerError as exc:
            raise ApplicationError(
                f"{exc}; nothing was sent, the next attempt tries again", type="LedgerUnavailable"
            ) from None
        if claim.entry is None and not claim.mine:
            raise ApplicationError(
                f"another attempt ({claim.owner}) may be sending this email: its claim runs"
                f" {claim.expires_in:.0f} s more; nothing was sent, the next attempt checks again",
                type="SendInProgress",
            )
        return claim

    async def _finish(
        self, inp: SendEmailInput, status: str, message_id: str, subject: str, detail: str
    ) -> SendEmailResult:
        # Recorded before returning: a retry after a crash from here on is a no-op.
        await self.ledger.record(inp.idempotency_key, status, message_id, subject, inp.to, detail)
        return SendEmailResult(status, message_id, subject, inp.to, detail)

    async def close(self) -> None:
        await self.smtp.close()
        await self.ledger.close()


class _Delivery:
    """One attempt's SMTP transaction and the record of its outcome, under its claim."""

    def __init__(
        self,
        acts: EmailActivities,
        inp: SendEmailInput,
        owner: str,
        lease: float,
        message_id: str,
        subject: str,
    ) -> None:
        self.acts, self.inp, self.owner, self.lease = acts, inp, owner, lease
        self.message_id, self.subject = message_id, subject
        self.committed = False  # DATA may have begun: finish and record, even if cancelled

    async def run(self, envelope_from: str, recipient: str, message: bytes) -> SendEmailResult:
        task = asyncio.ensure_future(self._send(envelope_from, recipient, message))
        try:
            result = await _heartbeat_while(task)
        except asyncio.CancelledError:
            if not self.committed:
                task.cancel()
                await self._release()
                raise
            # Temporal gave up on this attempt (timed out or cancelled) while the message
            # may be on its way: finish and record it, so that the retry, which waits for
            # this claim, finds the record instead of sending again.
            log.warning("send %s cancelled during DATA; finishing it", self.inp.idempotency_key)
            await asyncio.shield(task)
            raise
        await _fault_pause()
        return result

    async def _send(self, envelope_from: str, recipient: str, message: bytes) -> SendEmailResult:
        key = self.inp.idempotency_key
        try:
            await self.acts.smtp.send(envelope_from, [recipient], message, self._before_data)
        except SmtpBounceError as exc:
            return await self._record("bounced", str(exc))
        except SmtpUnavailableError as exc:
            # This attempt's transaction is over (even an ambiguous one): it sends no more,
            # so the next attempt need not wait for the lease.
            await self._release()
            raise ApplicationError(str(exc), type="SmtpUnavailable") from None
        except LedgerError as exc:  # from the check before DATA: nothing was sent
            raise ApplicationError(
                f"{exc}; nothing was sent, the next attempt tries again", type="LedgerUnavailable"
            ) from None
        log.debug("sent %s as %s", key, self.message_id)
        return await self._record("sent", "")

    async def _before_data(self) -> None:
        """Right before DATA: renew the claim; stop if it is no longer this attempt's."""
        claim = await self.acts.ledger.claim(self.inp.idempotency_key, self.owner, self.lease)
        if not claim.mine:
            holder = "it was sent already" if claim.entry else f"{claim.owner} holds it now"
            raise ApplicationError(
                f"this attempt lost its claim on the email ({holder}); nothing was sent",
                type="SendInProgress",
            )
        self.committed = True

    async def _record(self, status: str, detail: str) -> SendEmailResult:
        """Record the outcome, retrying while the ledger is slow: the message is out."""
        key, give_up = self.inp.idempotency_key, time.monotonic() + RECORD_PATIENCE
        delay = 0.05
        while True:
            try:
                return await self.acts._finish(
                    self.inp, status, self.message_id, self.subject, detail
                )
            except LedgerError as exc:
                if time.monotonic() > give_up:
                    raise ApplicationError(
                        f"the email was {status} but could not be recorded: {exc}",
                        type="LedgerUnavailable",
                    ) from None
                log.warning("recording %s %s failed, retrying: %s", status, key, exc)
            # Keep the claim alive while the record waits, so no retry sends again.
            try:
                await self.acts.ledger.claim(key, self.owner, self.lease)
            except LedgerError:
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _release(self) -> None:
        # Nothing went out: let the next attempt claim at once rather than wait the lease.
        try:
            await asyncio.shield(self.acts.ledger.release(self.inp.idempotency_key, self.owner))
        except (LedgerError, asyncio.CancelledError):
            pass


async def _fault_pause() -> None:
    from engine.runtime.settings import setting

    pause = setting("fault_pause_after_send")
    if pause:
        await asyncio.sleep(pause)


def send_lease(smtp_timeout: float, env=None) -> float:
    """``LIFECYCLE_SEND_LEASE`` seconds (default 120), at least ``2 * smtp_timeout + 10``:
    DATA waits at most twice the SMTP timeout (for 354, then for the final reply)."""
    from engine.runtime.settings import SettingsError, setting

    try:
        lease = setting("send_lease", env)
    except SettingsError as err:
        raise ApplicationError(str(err), type="InvalidSetting", non_retryable=True) from None
    return max(lease, 2 * smtp_timeout + 10)


def _attempt_token() -> str:
    unique = uuid.uuid4().hex[:12]
    if not activity.in_activity():
        return f"local/{unique}"
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_id}#{info.attempt}/{unique}"


def _heartbeat_interval() -> float:
    timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
    if timeout:
        return max(0.05, min(HEARTBEAT_EVERY, timeout.total_seconds() / 3))
    return HEARTBEAT_EVERY


async def _heartbeat_while(task: asyncio.Future) -> object:
    """Heartbeat before and every interval until ``task`` is done; return its result.
    Cancellation (the SDK delivers Temporal's timeouts and cancels through heartbeats)
    propagates to the caller, which decides what happens to ``task``."""
    if not activity.in_activity():
        return await asyncio.shield(task)
    every = _heartbeat_interval()
    while True:
        activity.heartbeat()
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()


async def _with_heartbeats(coro: Awaitable[object]) -> object:
    """Await ``coro``, heartbeating before and every few seconds while it runs, so a dead
    worker is noticed through the heartbeat timeout and a slow server is not taken for one."""
    task = asyncio.ensure_future(coro)
    try:
        return await _heartbeat_while(task)
    except asyncio.CancelledError:
        task.cancel()
        raise


def _is_sender_problem(sender: str) -> bool:
    try:
        address_of(sender)
    except AddressError:
        return True
    return False
