"""The customer entity: one long-lived workflow per customer that runs their journeys.

In: events by the ``event`` signal (usually signal-with-start from ``engine.runtime.client``).
Out: emails and activity calls (via activities), a journal of actions, and the ``status``
query (profile, active journeys and where each one waits).

Per event, in order: drop a duplicate ``id``; merge ``customer`` into the profile; end the
journeys whose ``goal`` is this event; hand it to journeys waiting for it (``where``
filters); start the journeys it triggers (``when``, ``key``, ``reentry``). Journeys run as
asyncio tasks inside this workflow, each walking its pinned plan (the compiled journey it
started with, kept by content hash), so editing rules never changes a journey in flight.

Before history gets long the workflow drains (stops taking events, parks every journey
at its next step boundary) and continues as new, carrying profile, journeys, unprocessed
events and dedupe ids.

This module runs in Temporal's sandbox: no I/O, no YAML/Lark/Jinja; time is
``self._now()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from dsl import evaluator
    from dsl.ir import Journey, journey_from_dict
    from engine.runtime.config import calls_task_queue
    from workflows.state import (
        ACTIVE_LIMIT,
        INBOX_CARRY_BYTES,
        INBOX_HISTORY_FACTOR,
        JOURNAL_LIMIT,
        PROFILE_LIMIT_BYTES,
        SEEN_IDS_LIMIT,
        STATE_START_LIMIT,
        VARS_LIMIT_BYTES,
        CustomerInput,
        CustomerState,
        Instance,
        advance,
        bounded_append,
        enter_block,
        json_size,
        leave_block,
        position_label,
        resolve_step,
        summarise,
    )

LOOKUP_ACTIVITY = "lookup_journeys"
SEND_ACTIVITY = "send_email"
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
LOOKUP_TIMEOUT = timedelta(seconds=10)
# How long a customer trusts the worker's list of trigger event types before asking again:
# a journey added to the rules starts for events at most this much later.
TRIGGER_CACHE_TTL = timedelta(seconds=60)
PATCH_TRIGGER_CACHE = "trigger-cache-v1"
PATCH_CALL_LIMITS = "call-limits-v1"  # calls on their own task queue, with schedule-to-close
# Bounded state: profile, journey variables, journeys in flight and the events carried
# through continue-as-new stay within workflows.state's limits (docs/reliability.md).
PATCH_STATE_BOUNDS = "state-bounds-v1"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Parked(Exception):
    """Raised inside a journey task when the workflow drains for continue-as-new."""


@workflow.defn(name="CustomerWorkflow")
class CustomerWorkflow:
    @workflow.init
    def __init__(self, inp: CustomerInput) -> None:
        # State is set here, not in run(): a signal-with-start's event is delivered
        # before run() begins and must land in the state we keep.
        self.s = inp.state or CustomerState(customer_id=inp.customer_id)
        if not self.s.epoch:
            # Distinguishes this entity from a later one with the same customer id (after
            # a terminate, say), so their idempotency keys can never collide.
            self.s.epoch = workflow.info().run_id[:8]
        # A simulation runs on a test server whose clock starts at the real time; the
        # offset moves this customer's clock to the simulated start (0 in production).
        self.clock_offset = timedelta(seconds=inp.clock_offset)
        self.send_heartbeat = timedelta(seconds=inp.send_heartbeat_seconds)
        self.tasks: dict[str, asyncio.Task] = {}
        self.journeys: dict[str, Journey] = {}  # hash -> parsed pinned journey
        self.draining = False
        self.busy = False  # an event is being processed
        self.bounded = False  # set in run(): PATCH_STATE_BOUNDS

    def _now(self) -> datetime:
        return workflow.now() + self.clock_offset

    # ------------------------------------------------------------------ entry points

    @workflow.run
    async def run(self, inp: CustomerInput) -> None:
        self.bounded = workflow.patched(PATCH_STATE_BOUNDS)
        for inst in list(self.s.instances.values()):
            self._start_task(inst)
        while True:
            await workflow.wait_condition(lambda: bool(self.s.inbox) or self._should_continue(inp))
            if self._should_continue(inp):
                break
            self.busy = True
            try:
                await self._process(self.s.inbox.pop(0))
            finally:
                self.busy = False
        # Drain: park every journey at a step boundary, then carry everything over.
        self.draining = True
        await workflow.wait_condition(lambda: all(t.done() for t in self.tasks.values()))
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Carry only the pinned plans that journeys in flight still use.
        in_use = {inst.hash for inst in self.s.instances.values()}
        self.s.plans = {h: p for h, p in self.s.plans.items() if h in in_use}
        await self._continue_as_new(inp)

    async def _continue_as_new(self, inp: CustomerInput) -> None:
        workflow.continue_as_new(
            CustomerInput(
                customer_id=inp.customer_id,
                state=self.s,
                history_limit=inp.history_limit,
                clock_offset=inp.clock_offset,
                send_heartbeat_seconds=inp.send_heartbeat_seconds,
            )
        )

    @workflow.signal(name="event")
    def on_event(self, event: dict) -> None:
        self.s.inbox.append(event)

    @workflow.query(name="status")
    def status(self) -> dict:
        now = self._now()
        active = []
        for inst in self.s.instances.values():
            entry = {
                "id": inst.id,
                "journey": inst.journey,
                "key": inst.key,
                "started_at": inst.started_at,
                "position": position_label(inst.pos),
                "doing": inst.doing,
            }
            if inst.wait:
                entry["waiting"] = dict(inst.wait)
                entry["waiting"]["seconds_left"] = max(
                    0, int((parse_iso(inst.wait["deadline"]) - now).total_seconds())
                )
            active.append(entry)
        return {
            "customer_id": self.s.customer_id,
            "profile": self.s.profile,
            "active": active,
            "journal": self.s.journal,
            "journal_total": self.s.journal_seq,  # lines ever written; `journal` keeps the last
            "events_processed": self.s.events_processed,
            "inbox": len(self.s.inbox),
            "now": iso(now),
        }

    @workflow.query(name="progress")
    def progress(self, since: int = 0) -> dict:
        """Journal lines numbered after ``since`` and the next wake-up: how a simulation
        collects every action, however many, without reading the bounded journal whole."""
        first = self.s.journal_seq - len(self.s.journal) + 1  # number of the oldest line kept
        return {
            "lines": self.s.journal[max(0, since + 1 - first) :],
            "seq": self.s.journal_seq,
            "lost": max(0, first - since - 1),
            "next_wake": self.next_wake(),
        }

    @workflow.query(name="next_wake")
    def next_wake(self) -> str | None:
        """The earliest deadline any journey waits for; None when nothing is active."""
        deadlines = [i.wait["deadline"] for i in self.s.instances.values() if i.wait]
        if self.s.inbox or self.busy:
            return iso(self._now())
        if not self.s.instances:
            return None
        if len(deadlines) < len(self.s.instances):
            return iso(self._now())  # a journey is between steps
        return min(deadlines)

    # ------------------------------------------------------------------ events

    def _should_continue(self, inp: CustomerInput) -> bool:
        info = workflow.info()
        due = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= inp.history_limit
        ) and not self.busy
        if due and self.bounded and self.s.inbox:
            # Carrying a burst of events could pass the payload limit: work it off first
            # (unless history itself is getting dangerous).
            length = info.get_current_history_length()
            if length < INBOX_HISTORY_FACTOR * inp.history_limit:
                return json_size(self.s.inbox) <= INBOX_CARRY_BYTES
        return due

    async def _process(self, event: dict) -> None:
        event_id = event.get("id")
        if event_id:
            if event_id in self.s.seen_ids:
                return
            bounded_append(self.s.seen_ids, event_id, SEEN_IDS_LIMIT)
        self.s.events_processed += 1
        etype = event.get("type", "")
        updates = event.get("customer")
        if isinstance(updates, dict) and updates:
            if self.bounded and json_size({**self.s.profile, **updates}) > PROFILE_LIMIT_BYTES:
                self._note(
                    "refused",
                    reason="profile_limit",
                    event_type=etype,
                    event_id=event_id or "",
                    detail=f"the profile update would pass {PROFILE_LIMIT_BYTES} bytes; "
                    "the profile was left as it was",
                )
            else:
                self.s.profile.update(updates)
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        now = self._now()

        for inst in self.s.instances.values():
            journey = self._journey(inst.hash)
            if journey.goal == etype:
                inst.goal_reached = True
            elif inst.wait and inst.wait["kind"] == "event" and inst.wait["event"] == etype:
                if inst.received is None and self._where_matches(inst, data, now):
                    inst.received = data

        if workflow.patched(PATCH_TRIGGER_CACHE):
            triggered = await self._lookup_cached(etype, now)
        else:
            # Histories recorded before the trigger cache: one lookup per event.
            triggered = await workflow.execute_local_activity(
                LOOKUP_ACTIVITY,
                {"event_type": etype, "known": sorted(self.s.plans)},
                start_to_close_timeout=LOOKUP_TIMEOUT,
            )
        for item in triggered:
            if "journey" in item:
                self.s.plans[item["hash"]] = item["journey"]
            self._maybe_start(item["hash"], data, now)

    async def _lookup_cached(self, etype: str, now: datetime) -> list[dict]:
        """Journeys ``etype`` triggers; no lookup at all for an event type that the worker's
        plan did not list as a trigger within the last TRIGGER_CACHE_TTL (most events,
        e.g. page views or deliveries, start nothing: the lookup was their main cost)."""
        fresh = self.s.triggers_at and now - parse_iso(self.s.triggers_at) < TRIGGER_CACHE_TTL
        if fresh and etype not in self.s.triggers:
            return []
        answer = await workflow.execute_local_activity(
            LOOKUP_ACTIVITY,
            {"event_type": etype, "known": sorted(self.s.plans), "with_triggers": True},
            start_to_close_timeout=LOOKUP_TIMEOUT,
        )
        self.s.triggers, self.s.triggers_at = answer["triggers"], iso(now)
        return answer["journeys"]

    def _where_matches(self, inst: Instance, data: dict, now: datetime) -> bool:
        where = inst.wait.get("where")
        if where is None:
            return True
        ctx = self._ctx(inst, now, event=data)
        return evaluator.truthy(evaluator.evaluate(where, ctx))

    def _maybe_start(self, plan_hash: str, data: dict, now: datetime) -> None:
        journey = self._journey(plan_hash)
        ctx = {
            "customer": self.s.profile,
            "trigger": data,
            "event": None,
            "vars": {},
            "now": now,
        }
        if journey.when is not None and not evaluator.truthy(evaluator.evaluate(journey.when, ctx)):
            return
        key = ""
        if journey.key is not None:
            value = evaluator.evaluate(journey.key, ctx)
            key = "" if value is None else str(value)
        entry_key = f"{journey.name}|{key}"
        active = [
            i.id for i in self.s.instances.values() if i.journey == journey.name and i.key == key
        ]
        if active:  # one active instance per journey and key: say so, never silently
            self._note("not_started", journey=journey.name, reason="active", instance=active[0])
            return
        if self.bounded and json_size(dataclasses.asdict(self.s)) > STATE_START_LIMIT:
            self._note(
                "not_started",
                journey=journey.name,
                reason="state_limit",
                detail=f"the customer's state is past {STATE_START_LIMIT} bytes",
            )
            return
        if self.bounded and len(self.s.instances) >= ACTIVE_LIMIT:
            self._note(
                "not_started",
                journey=journey.name,
                reason="active_limit",
                detail=f"{ACTIVE_LIMIT} journeys are in flight for this customer",
            )
            return
        last = self.s.entries.get(entry_key)
        mode = journey.reentry.mode
        if last is not None:
            if mode == "never":
                return
            if mode == "after" and now - parse_iso(last) < timedelta(
                seconds=journey.reentry.seconds
            ):
                return
        if mode != "always":  # only never / after consult the last entry
            self.s.entries[entry_key] = iso(now)
        self.s.seq += 1
        inst = Instance(
            id=f"{journey.name}:{key}:{self.s.seq}" if key else f"{journey.name}:{self.s.seq}",
            journey=journey.name,
            hash=plan_hash,
            key=key,
            trigger=data,
            started_at=iso(now),
        )
        self.s.instances[inst.id] = inst
        self._log(inst, "start", plan=plan_hash)
        self._start_task(inst)

    # ------------------------------------------------------------------ journeys

    def _journey(self, plan_hash: str) -> Journey:
        journey = self.journeys.get(plan_hash)
        if journey is None:
            journey = journey_from_dict(self.s.plans[plan_hash])
            self.journeys[plan_hash] = journey
        return journey

    def _start_task(self, inst: Instance) -> None:
        self.tasks[inst.id] = asyncio.create_task(self._run_instance(inst))

    def _ctx(self, inst: Instance, now: datetime, event: dict | None = None) -> dict:
        return {
            "customer": self.s.profile,
            "trigger": inst.trigger,
            "event": event if event is not None else inst.event,
            "vars": inst.vars,
            "now": now,
        }

    def _log(self, inst: Instance, action: str, at: datetime | None = None, **fields) -> None:
        line = {
            "at": iso(at or self._now()),
            "customer_id": self.s.customer_id,
            "journey": inst.journey,
            "instance": inst.id,
            "action": action,
        }
        line.update(fields)
        self._append(line)

    def _note(self, action: str, journey: str = "", **fields) -> None:
        """A journal line about the customer rather than one journey (refusals, skips)."""
        line = {"at": iso(self._now()), "customer_id": self.s.customer_id, "journey": journey}
        line["action"] = action
        line.update(fields)
        self._append(line)

    def _append(self, line: dict) -> None:
        self.s.journal_seq += 1
        line["seq"] = self.s.journal_seq
        bounded_append(self.s.journal, line, JOURNAL_LIMIT)

    def _end(self, inst: Instance, reason: str, **fields) -> None:
        self._log(inst, "end", reason=reason, **fields)
        self.s.instances.pop(inst.id, None)
        self.tasks.pop(inst.id, None)

    async def _run_instance(self, inst: Instance) -> None:
        journey = self._journey(inst.hash)
        try:
            while True:
                if inst.goal_reached:
                    return self._end(inst, "goal")
                if self.draining:
                    raise _Parked
                step = resolve_step(journey.steps, inst.pos)
                if step is None:
                    if not leave_block(inst.pos):
                        return self._end(inst, "completed")
                    continue
                inst.doing = f"{step.kind} at {step.origin}"
                outcome = await self._execute(inst, journey, step)
                inst.doing = ""
                if outcome is not None:
                    return self._end(inst, outcome[0], **outcome[1])
        except _Parked:
            inst.doing = ""

    async def _execute(self, inst: Instance, journey: Journey, step) -> tuple | None:
        """Run one step and move ``inst.pos``; returns (reason, fields) when the journey ends."""
        kind = step.kind
        now = self._now()
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
            cond = evaluator.truthy(evaluator.evaluate(step.cond, self._ctx(inst, now)))
            enter_block(inst.pos, "then" if cond else "else_")
            return None
        if kind == "set":
            value = evaluator.evaluate(step.value, self._ctx(inst, now))
            target = self.s.profile if step.target == "customer" else inst.vars
            limit = PROFILE_LIMIT_BYTES if step.target == "customer" else VARS_LIMIT_BYTES
            if self.bounded and json_size({**target, step.name: value}) > limit:
                return self._too_big(step, f"set {step.target}.{step.name}", limit)
            target[step.name] = value
            advance(inst.pos)
            return None
        if kind == "call":
            return await self._call(inst, step)
        if kind == "exit":
            return ("exit", {})
        raise ApplicationError(f"unknown step kind {kind!r} at {step.origin}", non_retryable=True)

    async def _wait(self, inst: Instance, step, kind: str) -> None:
        """Wait for the step's timer (or event); the deadline survives continue-as-new."""
        if inst.wait is None or inst.wait.get("pos") != inst.pos:
            deadline = self._now() + timedelta(seconds=step.seconds)
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
        remaining = (deadline - self._now()).total_seconds()
        if remaining > 0:
            try:
                await workflow.wait_condition(
                    lambda: inst.goal_reached or self.draining or inst.received is not None,
                    timeout=timedelta(seconds=remaining),
                )
            except TimeoutError:
                pass
        if self.draining and not inst.goal_reached and inst.received is None:
            if self._now() < deadline:
                raise _Parked

    def _template_context(self, inst: Instance, args: dict) -> dict:
        context = {"customer": self.s.profile, "trigger": inst.trigger}
        if inst.event is not None:
            context["event"] = inst.event
        context.update(inst.vars)
        context.update(args)
        return context

    def _idempotency_key(self, inst: Instance) -> str:
        return f"{self.s.customer_id}/{self.s.epoch}/{inst.id}/{position_label(inst.pos)}"

    async def _send(self, inst: Instance, journey: Journey, step) -> tuple | None:
        now = self._now()
        ctx = self._ctx(inst, now)
        args = {name: evaluator.evaluate(e, ctx) for name, e in step.args.items()}
        if step.kind == "send":
            to = self.s.profile.get("email")
            unsubscribe = self._unsubscribe_url(journey)
        else:
            to, unsubscribe = step.address, ""
        if not isinstance(to, str) or "@" not in to:
            self._log(
                inst,
                step.kind,
                template=step.template,
                status="skipped",
                detail="customer has no email address",
                origin=str(step.origin),
            )
            advance(inst.pos)
            return None
        payload = {
            "idempotency_key": self._idempotency_key(inst),
            "kind": step.kind,
            "template": step.template,
            "to": to,
            "sender": journey.sender,
            "customer_id": self.s.customer_id,
            "journey": journey.name,
            "context": self._template_context(inst, args),
            "unsubscribe_url": unsubscribe,
            "sent_at": iso(now),
        }
        try:
            result = await workflow.execute_activity(
                SEND_ACTIVITY,
                payload,
                start_to_close_timeout=SEND_TIMEOUT,
                heartbeat_timeout=self.send_heartbeat,
                retry_policy=SEND_RETRY,
            )
        except ActivityError as err:
            return self._failed(inst, step, err)
        fields = {
            "template": step.template,
            "to": result.get("to", to),
            "subject": result.get("subject", ""),
            "status": result.get("status", "sent"),
            "origin": str(step.origin),
        }
        if step.kind == "notify":
            fields["team"] = step.team
        if result.get("detail"):
            fields["detail"] = result["detail"]
        self._log(inst, step.kind, at=now, **fields)
        advance(inst.pos)
        return None

    def _unsubscribe_url(self, journey: Journey) -> str:
        template = journey.unsubscribe_url
        return template.replace("{customer_id}", self.s.customer_id) if template else ""

    async def _call(self, inst: Instance, step) -> tuple | None:
        now = self._now()
        ctx = self._ctx(inst, now)
        args = {name: evaluator.evaluate(e, ctx) for name, e in step.args.items()}
        payload = {
            "args": args,
            "context": {
                "customer_id": self.s.customer_id,
                "journey": inst.journey,
                "idempotency_key": self._idempotency_key(inst),
            },
        }
        limits = {}
        if workflow.patched(PATCH_CALL_LIMITS):
            # Its own task queue (a stuck call cannot take email's worker slots) and a
            # bound on all attempts together, so a call that never returns is reported.
            limits = {
                "task_queue": calls_task_queue(workflow.info().task_queue),
                "schedule_to_close_timeout": timedelta(seconds=step.schedule_to_close_seconds),
            }
        try:
            result = await workflow.execute_activity(
                "call." + step.activity,
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
            outcome = self._failed(inst, step, err)
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
            if self.bounded and json_size({**inst.vars, step.bind: result}) > VARS_LIMIT_BYTES:
                return self._too_big(step, f"the result of {step.activity}()", VARS_LIMIT_BYTES)
            inst.vars[step.bind] = result
        self._log(
            inst,
            "call",
            at=now,
            activity=step.activity,
            result=summarise(result),
            origin=str(step.origin),
        )
        advance(inst.pos)
        return None

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

    def _failed(self, inst: Instance, step, err: ActivityError) -> tuple:
        cause = err.cause
        message = str(cause) if cause is not None else str(err)
        error_type = getattr(cause, "type", None) or type(cause).__name__
        return (
            "failed",
            {"error": message, "error_type": error_type, "origin": str(step.origin)},
        )
