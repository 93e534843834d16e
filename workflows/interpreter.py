"""The journey interpreter: walks one pinned journey plan, step by step.

In: a journey instance (``workflows.state.Instance``: position, variables, what it waits
for), its pinned ``dsl.ir.Journey``, and ``Effects``: the small interface back to the
customer entity (the clock, waiting, executing an activity, the journal, patches).
Out: the journey's end, ``(reason, fields)`` (``completed``, ``goal``, ``exit``,
``failed``), or None when the entity drains for continue-as-new and the journey is parked
at a step boundary (everything it needs to go on is in the instance).

Steps: ``send`` / ``notify`` (through the send policy, ``workflows.policy``, then the
``send_email`` activity), ``wait``, ``wait for``, ``if``, ``set``, ``call`` (the ``call.NAME``
activity on the calls task queue) and ``exit``. Activity names and payloads come from
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
from dsl.ir import Journey
from workflows.policy import SKIP, decide_send
from workflows.state import (
    PROFILE_LIMIT_BYTES,
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

Outcome = tuple[str, dict] | None


class Parked(Exception):
    """Raised inside a journey when the entity drains for continue-as-new."""


class Effects(Protocol):
    """What the interpreter needs from the customer entity (``CustomerWorkflow``)."""

    state: CustomerState  # profile, customer id, epoch, customer-wide settings
    bounded: bool  # state bounds apply (docs/reliability.md)
    draining: bool  # the entity is draining: park at the next step boundary
    send_heartbeat: timedelta  # the send activity's heartbeat timeout (CustomerInput)

    def now(self) -> datetime: ...

    async def wait(self, until: Callable[[], bool], timeout: timedelta) -> None:
        """Return once ``until()`` holds or ``timeout`` passed (a durable timer)."""

    async def execute_activity(self, activity: str, arg: Any, **options) -> Any: ...

    def log(self, inst: Instance, action: str, at: datetime | None = None, **fields) -> None: ...

    def patched(self, patch_id: str) -> bool: ...

    def task_queue(self) -> str: ...


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

    async def _send(self, inst: Instance, journey: Journey, step) -> Outcome:
        now = self.fx.now()
        ctx = self.context(inst, now)
        args = {name: evaluator.evaluate(e, ctx) for name, e in step.args.items()}
        settings = self.settings(journey)
        if step.kind == "send":
            address = self.fx.state.profile.get("email")
            unsubscribe = settings.unsubscribe_url.replace(
                "{customer_id}", self.fx.state.customer_id
            )
        else:
            address, unsubscribe = step.address, ""
        decision = decide_send(step.kind, address)
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
        )
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
            return self._failed(step, err)
        fields = {
            "template": step.template,
            "to": result.to or decision.to,
            "subject": result.subject,
            "status": result.status or "sent",
            "origin": str(step.origin),
        }
        if step.kind == "notify":
            fields["team"] = step.team
        if result.detail:
            fields["detail"] = result.detail
        self.fx.log(inst, step.kind, at=now, **fields)
        advance(inst.pos)
        return None

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
