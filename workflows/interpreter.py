"""The journey interpreter: walks one pinned journey plan, step by step.

In: a journey instance (``workflows.state.Instance``: position, variables, what it waits
for), its pinned ``dsl.ir.Journey``, and ``Effects``: the small interface back to the
customer entity (the clock, waiting, executing an activity, the journal, patches).
Out: the journey's end, ``(reason, fields)`` (``completed``, ``goal``, ``exit``,
``failed``), or None when the entity drains for continue-as-new and the journey is parked
at a step boundary (everything it needs to go on is in the instance).

Steps: ``send`` / ``notify`` (through the send policy, ``workflows.policy``, then the
``send_email`` activity; with the contact policy on (``Effects.policy``), a marketing send
takes its turn, may be suppressed, or deferred on a timer kept in ``inst.wait`` with kind
``defer``, and bounces are suppressed in the customer's state), ``wait``, ``wait until``,
``wait for``, ``if``, ``split`` (a variant chosen by ``dsl.experiments``: no command; a
journey's holdout has every send suppressed, reason ``holdout``), ``set``, ``call`` (the ``call.NAME`` activity on the calls task
queue) and ``exit``. Activity names and payloads come from
``dsl.contract``.

Runs in Temporal's sandbox: deterministic, no I/O; time is ``effects.now()``. Every
command this issues must stay as it is for recorded histories to replay
(tests/workflows/test_durability.py, test_replay_mutations.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

from dsl import evaluator
from dsl.clock import iso, parse_iso
from dsl.contract import (
    SEND_EMAIL,
    CallInput,
    CustomerSettings,
    SendEmailInput,
    SendEmailResult,
    call_activity_name,
    calls_task_queue,
)
from dsl.experiments import assign, in_holdout
from dsl.ir import VARIANT_BLOCK, Journey
from workflows.policy import (
    DEFER,
    MARKETING,
    SEND,
    SKIP,
    SUPPRESS,
    TRANSACTIONAL,
    SendRequest,
    address_key,
    decide_send,
    next_local_time,
    resolve_zone,
)
from workflows.state import (
    MARKETING_SENT_LIMIT,
    PROFILE_LIMIT_BYTES,
    SUPPRESSED_LIMIT,
    VARS_LIMIT_BYTES,
    CustomerState,
    Instance,
    advance,
    enter_block,
    json_size,
    leave_block,
    position_label,
    resolve_step,
    summarise,
)

# SMTP outages must never fail a journey: retry forever with a capped backoff.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=["TemplateError", "InvalidInput"],
)
SEND_TIMEOUT = timedelta(seconds=60)
# A dead worker is noticed through the heartbeat timeout (FINDINGS.md).
SEND_HEARTBEAT = timedelta(seconds=15)
PATCH_CALL_LIMITS = "call-limits-v1"  # calls on their own task queue, with schedule-to-close
# The contact policy (CONTRACT.md §6): the entity sets ``Effects.policy`` from this patch.
PATCH_CONTACT_POLICY = "contact-policy-v1"

Outcome = tuple[str, dict] | None


class Parked(Exception):
    """Raised inside a journey when the entity drains for continue-as-new."""


class Effects(Protocol):
    """What the interpreter needs from the customer entity (``CustomerWorkflow``)."""

    state: CustomerState  # profile, customer id, epoch, customer-wide settings
    bounded: bool  # state bounds apply (docs/reliability.md)
    draining: bool  # the entity is draining: park at the next step boundary
    send_heartbeat: timedelta  # the send activity's heartbeat timeout (CustomerInput)
    policy: bool  # the contact policy applies (PATCH_CONTACT_POLICY)

    def now(self) -> datetime: ...

    async def wait(self, until: Callable[[], bool], timeout: timedelta) -> None:
        """Return once ``until()`` holds or ``timeout`` passed (a durable timer)."""

    async def execute_activity(self, activity: str, arg: Any, **options) -> Any: ...

    def log(self, inst: Instance, action: str, at: datetime | None = None, **fields) -> None: ...

    def patched(self, patch_id: str) -> bool: ...

    def task_queue(self) -> str: ...

    async def send_turn(self, inst: Instance) -> Callable[[], None]:
        """Wait until it is ``inst``'s turn to decide a marketing send among those due at
        this instant; returns the function that ends the turn."""

    def note(self, action: str, **fields) -> None:
        """A journal line about the customer rather than one journey."""


class Interpreter:
    def __init__(self, effects: Effects) -> None:
        self.fx = effects

    # ------------------------------------------------------------------ walking

    async def run(self, inst: Instance, journey: Journey) -> Outcome:
        """Walk ``journey`` from ``inst.pos``: its end ``(reason, fields)``, or None if parked."""
        try:
            while True:
                if inst.goal_reached:
                    return (inst.stop_reason or "goal", {})
                if self.fx.draining:
                    raise Parked
                step = resolve_step(journey.steps, inst.pos)
                if step is None:
                    if not leave_block(inst.pos):
                        return ("completed", {})
                    continue
                inst.doing = f"{step.kind} at {step.origin}"
                outcome = await self.execute(inst, journey, step)
                inst.doing = ""
                if outcome is not None:
                    return outcome
        except Parked:
            inst.doing = ""
            return None

    async def execute(self, inst: Instance, journey: Journey, step) -> Outcome:
        """Run one step and move ``inst.pos``; returns (reason, fields) when the journey ends."""
        kind = step.kind
        now = self.fx.now()
        if kind in ("send", "notify"):
            return await self._send(inst, journey, step)
        if kind == "wait":
            await self._wait(inst, step, "timer")
            if inst.goal_reached:
                return None
            inst.wait = None
            advance(inst.pos)
            return None
        if kind == "wait_for":
            await self._wait(inst, step, "event")
            if inst.goal_reached:
                return None
            received, inst.received, inst.wait = inst.received, None, None
            if received is not None:
                inst.event = received
                enter_block(inst.pos, "received")
            else:
                enter_block(inst.pos, "timeout")
            return None
        if kind == "if":
            cond = evaluator.truthy(evaluator.evaluate(step.cond, self.context(inst, now)))
            enter_block(inst.pos, "then" if cond else "else_")
            return None
        if kind == "set":
            value = evaluator.evaluate(step.value, self.context(inst, now))
            target = self.fx.state.profile if step.target == "customer" else inst.vars
            limit = PROFILE_LIMIT_BYTES if step.target == "customer" else VARS_LIMIT_BYTES
            if self.fx.bounded and json_size({**target, step.name: value}) > limit:
                return self._too_big(step, f"set {step.target}.{step.name}", limit)
            target[step.name] = value
            if step.target == "customer":
                # entering triggers and exit_when look at the profile after each change
                changed = getattr(self.fx, "profile_changed", None)
                if changed is not None:
                    changed()
            advance(inst.pos)
            return None
        if kind == "call":
            return await self._call(inst, step)
        if kind == "exit":
            return ("exit", {})
        if kind == "split":
            # Pure: the variant is a function of customer id, journey and experiment
            # (dsl.experiments), so this issues no command and replays as it ran.
            shares = [(v.name, v.weight) for v in step.variants]
            variant = assign(self.fx.state.customer_id, journey.name, step.experiment, shares)
            self.fx.log(
                inst,
                "split",
                experiment=step.experiment,
                variant=variant,
                variants=[v.name for v in step.variants],  # for reports: the first is the baseline
                origin=str(step.origin),
            )
            enter_block(inst.pos, VARIANT_BLOCK + variant)
            return None
        if kind == "wait_until":
            await self._wait_until(inst, step)
            if inst.goal_reached:
                return None
            inst.wait = None
            advance(inst.pos)
            return None
        raise ApplicationError(f"unknown step kind {kind!r} at {step.origin}", non_retryable=True)

    def context(self, inst: Instance, now: datetime, event: dict | None = None) -> dict:
        """What expressions see: the profile, the trigger, the event, variables, the time."""
        return {
            "customer": self.fx.state.profile,
            "trigger": inst.trigger,
            "event": event if event is not None else inst.event,
            "vars": inst.vars,
            "now": now,
        }

    # ------------------------------------------------------------------ waiting

    async def _wait(self, inst: Instance, step, kind: str) -> None:
        """Wait for the step's timer (or event); the deadline survives continue-as-new."""
        if inst.wait is None or inst.wait.get("pos") != inst.pos:
            deadline = self.fx.now() + timedelta(seconds=step.seconds)
            inst.wait = {
                "pos": list(inst.pos),
                "kind": kind,
                "deadline": iso(deadline),
                "origin": str(step.origin),
            }
            if kind == "event":
                inst.wait["event"] = step.event
                inst.wait["where"] = step.where.tree if step.where is not None else None
                inst.received = None
        deadline = parse_iso(inst.wait["deadline"])
        remaining = (deadline - self.fx.now()).total_seconds()
        if remaining > 0:
            await self.fx.wait(
                lambda: inst.goal_reached or self.fx.draining or inst.received is not None,
                timedelta(seconds=remaining),
            )
        if self.fx.draining and not inst.goal_reached and inst.received is None:
            if self.fx.now() < deadline:
                raise Parked

    async def _wait_until(self, inst: Instance, step) -> None:
        """``wait until HH:MM`` / ``wait until EXPR``: a timer to a time computed when the
        step starts (kept in ``inst.wait``, so it survives continue-as-new)."""
        if inst.wait is None or inst.wait.get("pos") != inst.pos:
            now = self.fx.now()
            if step.minutes is not None:
                target = next_local_time(self.zone(), step.minutes, now)
            else:
                value = evaluator.evaluate(step.at, self.context(inst, now))
                target = None
                if isinstance(value, str):
                    try:
                        target = parse_iso(value)
                    except ValueError:
                        target = None
                elif isinstance(value, datetime):
                    target = value
            if target is None or target <= now:
                return  # past, null or not a time: no wait
            inst.wait = {
                "pos": list(inst.pos),
                "kind": "timer",
                "deadline": iso(target),
                "origin": str(step.origin),
            }
        await self._sleep_until(inst, parse_iso(inst.wait["deadline"]))

    async def _sleep_until(self, inst: Instance, deadline: datetime, wake=None) -> None:
        """Sleep to ``deadline`` (or until the goal, a drain, or ``wake()``); a drain
        before the deadline parks the journey with ``inst.wait`` kept."""
        remaining = (deadline - self.fx.now()).total_seconds()
        if remaining > 0:
            await self.fx.wait(
                lambda: inst.goal_reached or self.fx.draining or (wake is not None and wake()),
                timedelta(seconds=remaining),
            )
        if self.fx.draining and not inst.goal_reached and self.fx.now() < deadline:
            raise Parked

    def zone(self) -> str:
        """The customer's time zone (CONTRACT.md §6); an invalid one is reported once."""
        s = self.fx.state
        name, bad = resolve_zone(s.profile.get("timezone"), s.settings.timezone)
        if bad and s.zone_warned != bad:
            s.zone_warned = bad
            self.fx.note(
                "warning",
                reason="invalid_timezone",
                detail=f"customer.timezone {bad!r} is not an IANA time zone; using {name}",
            )
        return name

    # ------------------------------------------------------------------ sending

    def _template_context(self, inst: Instance, args: dict) -> dict:
        context = {"customer": self.fx.state.profile, "trigger": inst.trigger}
        if inst.event is not None:
            context["event"] = inst.event
        context.update(inst.vars)
        context.update(args)
        return context

    def _idempotency_key(self, inst: Instance) -> str:
        s = self.fx.state
        return f"{s.customer_id}/{s.epoch}/{inst.id}/{position_label(inst.pos)}"

    def settings(self, journey: Journey) -> CustomerSettings:
        """The customer-wide settings; a journey pinned before they were customer state
        carries its own copy and keeps it."""
        if journey.sender:
            return CustomerSettings(sender=journey.sender, unsubscribe_url=journey.unsubscribe_url)
        return self.fx.state.settings

    def held_out(self, journey: Journey) -> bool:
        """The customer is in the journey's holdout (CONTRACT.md §8): sent nothing."""
        return in_holdout(self.fx.state.customer_id, journey.name, journey.holdout)

    async def _send(self, inst: Instance, journey: Journey, step) -> Outcome:
        decision = end_turn = None
        if step.kind == "send" and journey.holdout and self.held_out(journey):
            # Suppressed (reason holdout) before the contact policy: no turn, no cap.
            address = self.fx.state.profile.get("email")
            decision = decide_send("send", address, SendRequest(holdout=True))
            return await self._deliver(inst, journey, step, decision, None)
        if getattr(self.fx, "policy", False) and step.kind == "send":
            decision, end_turn = await self._decide(inst, journey)
            if decision is None:  # the goal ended the journey while it was deferred
                return None
        try:
            return await self._deliver(inst, journey, step, decision, end_turn)
        finally:
            if end_turn is not None:
                end_turn()

    def _request(self, journey: Journey) -> SendRequest:
        s = self.fx.state
        settings = s.settings
        consent = True
        if settings.consent is not None:
            ctx = {"customer": s.profile, "trigger": {}, "event": None, "vars": {}}
            ctx["now"] = self.fx.now()
            consent = evaluator.truthy(evaluator.evaluate(settings.consent, ctx))
        marketing = journey.message_class != TRANSACTIONAL
        return SendRequest(
            message_class=journey.message_class or MARKETING,
            when_capped=journey.when_capped,
            unsubscribed=s.profile.get("unsubscribed") is True,
            consent=consent,
            suppressed=tuple(s.suppressed),
            now=self.fx.now(),
            zone=self.zone() if marketing and settings.quiet_hours else "UTC",
            quiet_hours=tuple(settings.quiet_hours) if settings.quiet_hours else None,
            cap=tuple(settings.frequency_cap) if settings.frequency_cap else None,
            sent=tuple(parse_iso(t) for t in s.marketing_sent) if settings.frequency_cap else (),
        )

    async def _decide(self, inst: Instance, journey: Journey):
        """The contact policy's decision for the send at ``inst.pos`` and the function that
        ends this send's turn, deferring (a timer, kept in ``inst.wait``) as long as the
        policy says so; (None, None) if the goal came meanwhile.

        Marketing sends due at one instant decide one at a time, in the order of their
        journeys' start (``Effects.send_turn``): each sees the sends before it in the cap."""
        marketing = journey.message_class != TRANSACTIONAL
        while True:
            end_turn = await self.fx.send_turn(inst) if marketing else None
            address = self.fx.state.profile.get("email")
            try:
                decision = decide_send("send", address, self._request(journey))
            except BaseException:
                if end_turn is not None:
                    end_turn()
                raise
            if decision.action != DEFER:
                return decision, end_turn
            if end_turn is not None:
                end_turn()
            deadline = iso(decision.until)
            wait = inst.wait
            if wait is None or wait.get("pos") != inst.pos or wait.get("deadline") != deadline:
                origin = str(self._step(inst, journey).origin)
                inst.wait = {
                    "pos": list(inst.pos),
                    "kind": "defer",
                    "deadline": deadline,
                    "reason": decision.reason,
                    "detail": decision.detail,
                    "origin": origin,
                }
                self.fx.log(
                    inst,
                    "defer",
                    template=self._step(inst, journey).template,
                    until=deadline,
                    reason=decision.reason,
                    detail=decision.detail,
                    origin=origin,
                )
            # Decide again at the deadline, or as soon as an event changes the customer
            # (an unsubscribe while deferred stops the send).
            seen = self.fx.state.events_processed
            await self._sleep_until(
                inst,
                decision.until,
                wake=lambda seen=seen: self.fx.state.events_processed != seen,
            )
            if inst.goal_reached:
                return None, None

    def _step(self, inst: Instance, journey: Journey):
        return resolve_step(journey.steps, inst.pos)

    async def _deliver(self, inst: Instance, journey: Journey, step, decision, end_turn):
        now = self.fx.now()
        ctx = self.context(inst, now)
        args = {name: evaluator.evaluate(e, ctx) for name, e in step.args.items()}
        settings = self.settings(journey)
        transactional = journey.message_class == TRANSACTIONAL
        if step.kind == "send":
            # The activity signs the link ({token}) and fills in {customer_id}.
            address, unsubscribe = self.fx.state.profile.get("email"), settings.unsubscribe_url
            if transactional:
                unsubscribe = ""
        else:
            address, unsubscribe = step.address, ""
        policy = decision is not None
        if decision is None:
            decision = decide_send(step.kind, address)
        if policy:
            inst.wait = None
        if decision.action == SUPPRESS:
            self.fx.log(
                inst,
                step.kind,
                template=step.template,
                to=address,
                status="suppressed",
                reason=decision.reason,
                detail=decision.detail,
                origin=str(step.origin),
            )
            advance(inst.pos)
            return None
        if decision.action == SKIP:
            self.fx.log(
                inst,
                step.kind,
                template=step.template,
                status="skipped",
                detail=decision.detail,
                origin=str(step.origin),
            )
            advance(inst.pos)
            return None
        payload = SendEmailInput(
            idempotency_key=self._idempotency_key(inst),
            kind=step.kind,
            template=step.template,
            to=decision.to,
            sender=settings.sender,
            customer_id=self.fx.state.customer_id,
            journey=journey.name,
            context=self._template_context(inst, args),
            unsubscribe_url=unsubscribe,
            sent_at=iso(now),
            public_url=settings.public_url if step.kind == "send" else "",
            message_class=journey.message_class,
        )
        reserved = ""
        if policy:
            if decision.action == SEND and not transactional:
                # Counted now, before the send is awaited, so that the next send due at
                # this instant sees it; given back if it does not go out.
                reserved = iso(now)
                self._count_sent(reserved)
            if end_turn is not None:
                end_turn()
        try:
            result: SendEmailResult = await self.fx.execute_activity(
                SEND_EMAIL,
                payload,
                result_type=SendEmailResult,
                start_to_close_timeout=SEND_TIMEOUT,
                heartbeat_timeout=getattr(self.fx, "send_heartbeat", SEND_HEARTBEAT),
                retry_policy=SEND_RETRY,
            )
        except ActivityError as err:
            if reserved:
                self._uncount_sent(reserved)
            return self._failed(step, err)
        fields = {
            "template": step.template,
            "to": result.to or decision.to,
            "subject": result.subject,
            "status": result.status or "sent",
            "origin": str(step.origin),
        }
        if policy and result.status in ("bounced", "suppressed"):
            if reserved:
                self._uncount_sent(reserved)
            self._suppress(result.to or decision.to)
            if result.status == "suppressed":
                fields["reason"] = "bounced"
        if step.kind == "notify":
            fields["team"] = step.team
        if result.detail:
            fields["detail"] = result.detail
        self.fx.log(inst, step.kind, at=now, **fields)
        advance(inst.pos)
        return None

    def _count_sent(self, at: str) -> None:
        sent = self.fx.state.marketing_sent
        sent.append(at)
        if len(sent) > MARKETING_SENT_LIMIT:
            del sent[: len(sent) - MARKETING_SENT_LIMIT]

    def _uncount_sent(self, at: str) -> None:
        sent = self.fx.state.marketing_sent
        if at in sent:
            sent.reverse()
            sent.remove(at)
            sent.reverse()

    def _suppress(self, address: str) -> None:
        """Suppress ``address`` for every later send of this customer (a hard bounce)."""
        if not isinstance(address, str) or "@" not in address:
            return
        suppress_address(self.fx.state.suppressed, address)

    # ------------------------------------------------------------------ calling

    async def _call(self, inst: Instance, step) -> Outcome:
        now = self.fx.now()
        ctx = self.context(inst, now)
        args = {name: evaluator.evaluate(e, ctx) for name, e in step.args.items()}
        payload = CallInput(
            args=args,
            context={
                "customer_id": self.fx.state.customer_id,
                "journey": inst.journey,
                "idempotency_key": self._idempotency_key(inst),
            },
        )
        limits = {}
        if self.fx.patched(PATCH_CALL_LIMITS):
            # Its own task queue (a stuck call cannot take email's worker slots) and a
            # bound on all attempts together, so a call that never returns is reported.
            limits = {
                "task_queue": calls_task_queue(self.fx.task_queue()),
                "schedule_to_close_timeout": timedelta(seconds=step.schedule_to_close_seconds),
            }
        try:
            result = await self.fx.execute_activity(
                call_activity_name(step.activity),
                payload,
                start_to_close_timeout=timedelta(seconds=step.timeout_seconds),
                **limits,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(minutes=5),
                    maximum_attempts=step.max_attempts,
                    non_retryable_error_types=["InvalidInput"],
                ),
            )
        except ActivityError as err:
            outcome = self._failed(step, err)
            if isinstance(err.cause, ActivityTimeoutError):
                # Say which limit ran out, not just "Timeout" (docs/activities.md).
                limit = {
                    TimeoutType.SCHEDULE_TO_CLOSE: (
                        f"schedule-to-close timeout ({step.schedule_to_close_seconds} s, "
                        "all attempts together)"
                    ),
                    TimeoutType.START_TO_CLOSE: (
                        f"start-to-close timeout ({step.timeout_seconds} s per attempt, "
                        f"{step.max_attempts} attempts)"
                    ),
                }.get(err.cause.type, "timeout")
                outcome[1]["error"] = f"call {step.activity}() did not finish within its {limit}"
                outcome[1]["error_type"] = "Timeout"
            return outcome
        if step.bind:
            if self.fx.bounded and json_size({**inst.vars, step.bind: result}) > VARS_LIMIT_BYTES:
                return self._too_big(step, f"the result of {step.activity}()", VARS_LIMIT_BYTES)
            inst.vars[step.bind] = result
        self.fx.log(
            inst,
            "call",
            at=now,
            activity=step.activity,
            result=summarise(result),
            origin=str(step.origin),
        )
        advance(inst.pos)
        return None

    # ------------------------------------------------------------------ failures

    def _too_big(self, step, what: str, limit: int) -> tuple:
        """End the journey (reason failed) rather than let its state grow past a bound."""
        return (
            "failed",
            {
                "error": f"{what} would pass the journey's limit of {limit} bytes",
                "error_type": "StateLimit",
                "origin": str(step.origin),
            },
        )

    def _failed(self, step, err: ActivityError) -> tuple:
        cause = err.cause
        message = str(cause) if cause is not None else str(err)
        error_type = getattr(cause, "type", None) or type(cause).__name__
        return (
            "failed",
            {"error": message, "error_type": error_type, "origin": str(step.origin)},
        )


def suppress_address(suppressed: list[str], address: str) -> None:
    """Add ``address`` (lower case) to a customer's suppression list, bounded."""
    key = address_key(address)
    if key in suppressed:
        return
    suppressed.append(key)
    if len(suppressed) > SUPPRESSED_LIMIT:
        del suppressed[: len(suppressed) - SUPPRESSED_LIMIT]
