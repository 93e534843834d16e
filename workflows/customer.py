"""The customer entity: one long-lived workflow per customer that runs their journeys.

In: events (``dsl.contract.Event``) by the ``event`` signal (usually signal-with-start from
``engine.runtime.client``). Out: emails and activity calls (via activities), a journal of
actions, and the ``status`` query (profile, active journeys and where each one waits).

Per event, in order: drop a duplicate ``id``; merge ``customer`` into the profile; apply
the contact policy's events (``customer.unsubscribed`` / ``customer.resubscribed`` /
``email.complained``: ``customer.unsubscribed`` and the suppressed addresses); end the
journeys whose ``goal`` is this event; hand it to journeys waiting for it (``where``
filters); start the journeys it triggers (``when``, ``key``, ``reentry``), as the plan
store answers through the ``lookup_journeys`` activity (``dsl.contract.LookupResult``:
the journeys, the plan's trigger keys for the trigger cache, and the customer-wide
settings, kept in the state). Journeys run as asyncio tasks inside this workflow, each
walked by ``workflows.interpreter`` over its pinned plan (the compiled journey it started
with, kept by content hash), so editing rules never changes a journey in flight. This
class is the interpreter's ``Effects``: its clock, timers, activities and journal.

Before history gets long the workflow drains (stops taking events, parks every journey
at its next step boundary) and continues as new, carrying profile, journeys, unprocessed
events and dedupe ids.

This module runs in Temporal's sandbox: no I/O, no YAML/Lark/Jinja, nothing from
``engine/``; time is ``self._now()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from dsl import evaluator, explain
    from dsl.contract import (
        LOOKUP,
        RECORD,
        RECORDED_ACTIONS,
        Event,
        LookupInput,
        LookupItem,
        LookupResult,
        RecordInput,
        lookup_result_of,
    )
    from dsl.experiments import converted
    from dsl.ir import Journey, Trigger, journey_from_dict
    from dsl.schedule import describe_due, next_due
    from dsl.zones import resolve_zone
    from workflows.interpreter import (
        PATCH_CONTACT_POLICY,
        Interpreter,
        iso,
        parse_iso,
        suppress_address,
    )
    from workflows.state import (
        ACTIVE_LIMIT,
        DECISIONS_LIMIT,
        INBOX_CARRY_BYTES,
        INBOX_HISTORY_FACTOR,
        JOURNAL_LIMIT,
        PROFILE_LIMIT_BYTES,
        RECENT_EVENTS_LIMIT,
        RECORD_PENDING_LIMIT,
        SEEN_IDS_LIMIT,
        STATE_START_LIMIT,
        WHY_TEXT_CHARS,
        WHY_VALUE_BYTES,
        CustomerInput,
        CustomerState,
        Instance,
        bounded_append,
        json_size,
        position_label,
        summarise,
    )
    from workflows.visibility import journeys_update

LOOKUP_TIMEOUT = timedelta(seconds=10)
# How long a customer trusts the worker's list of trigger keys before asking again:
# a journey added to the rules starts for events at most this much later.
TRIGGER_CACHE_TTL = timedelta(seconds=60)
PATCH_TRIGGER_CACHE = "trigger-cache-v1"
# Bounded state: profile, journey variables, journeys in flight and the events carried
# through continue-as-new stay within workflows.state's limits (docs/reliability.md).
PATCH_STATE_BOUNDS = "state-bounds-v1"
# A run that began before the contact policy looks up at once on a subscription event
# (a lookup the trigger cache would have skipped), to learn that the worker applies it.
PATCH_POLICY_SWITCH = "contact-policy-switch-v1"
SUBSCRIPTION_EVENTS = ("customer.unsubscribed", "customer.resubscribed", "email.complained")
# Triggers that are not events (inactivity, dates, entering), exit_when: the entity's own
# durable timer for the next due trigger, and lookups by trigger key (CONTRACT.md §7).
PATCH_TRIGGERS = "triggers-v1"
TIMER_KINDS = ("inactivity:", "date:")  # trigger keys the entity schedules a timer for
SEGMENT_KIND = "segment:"
# The durable record of journeys (CONTRACT.md §8, engine.runtime.record): measured journal
# lines go to the record_journal local activity, once the worker's lookup answer says it
# keeps the record (settings.record; the marker, at the start of every run, names the runs
# that began with it). No server round trip: a local activity's result rides the
# completion of the workflow task that wrote the lines.
PATCH_RECORD = "journey-record-v1"
RECORD_TIMEOUT = timedelta(seconds=15)  # one attempt; the ledger's own bound is 5 s
# After a failed attempt (the database is down or locked): 1 minute, doubling to 1 hour.
RECORD_RETRY = timedelta(seconds=60)
RECORD_RETRY_MAX = timedelta(hours=1)
RECORD_BATCH = 200  # lines per activity
# The journeys in flight as a search attribute (workflows.visibility), for the Temporal UI:
# upserted when the set changes, where the worker said the namespace has it registered.
# The marker (at the start of every run) names the runs that began with it, also in the
# TemporalChangeVersion search attribute; what switches upserts on is the recorded answer.
PATCH_SEARCH_ATTRIBUTES = "search-attributes-v1"


def _brief(value):
    """A value for a ``why`` line: a long string cut (marked with "…"), anything else
    past WHY_VALUE_BYTES replaced by a note of its size."""
    if isinstance(value, str) and len(value) > WHY_VALUE_BYTES:
        return value[:WHY_VALUE_BYTES] + "…"
    return summarise(value, WHY_VALUE_BYTES)


@workflow.defn(name="CustomerWorkflow")
class CustomerWorkflow:
    interpreter_class = Interpreter  # tests/workflows/mutants.py swaps in changed ones

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
        self.policy_patched = False  # set in run(): PATCH_CONTACT_POLICY (CONTRACT.md §6)
        self.turns: list[tuple] = []  # marketing sends waiting to decide (send_turn)
        self.triggers_on = False  # set in run(): PATCH_TRIGGERS
        self.profile_dirty = False  # a step changed the profile (entering, exit_when)
        self.parsed_triggers: dict[str, Trigger] = {}  # trigger key -> Trigger
        self.counters: dict[str, object] = {}  # metric counters, made once (_counter)
        self.record_in_flight = False
        self.record_failures = 0  # failed record attempts in a row (the retry's backoff)
        self.why_cause: dict = {}  # what the entry decisions being made answer (_decided)
        self.interpreter = self.interpreter_class(self)

    def _now(self) -> datetime:
        return workflow.now() + self.clock_offset

    # ------------------------------------------------------------------ entry points

    @workflow.run
    async def run(self, inp: CustomerInput) -> None:
        self.bounded = workflow.patched(PATCH_STATE_BOUNDS)
        self.policy_patched = self._contact_policy_patched()
        self.triggers_on = workflow.patched(PATCH_TRIGGERS)
        # The marker names the runs that began with the record; what switches the record
        # on is the worker's recorded lookup answer (_recording), so a run that began
        # before it records from its first answer after the deploy. (Asked here, never
        # later: a patch first asked after a local activity's result lands in another
        # workflow task on replay than it did live.)
        workflow.patched(PATCH_RECORD)
        for inst in list(self.s.instances.values()):
            self._start_task(inst)
        self.recorder = asyncio.create_task(self._record_loop())
        workflow.patched(PATCH_SEARCH_ATTRIBUTES)  # see _journeys_changed
        self._journeys_changed()  # a run continued as new: catch up if need be
        if self.triggers_on:
            self._reschedule(self._now())
            await self._run_with_triggers(inp)
        else:
            while True:
                await workflow.wait_condition(
                    lambda: bool(self.s.inbox) or self._should_continue(inp)
                )
                if self._should_continue(inp):
                    break
                self.busy = True
                try:
                    await self._process(self.s.inbox.pop(0))
                finally:
                    self.busy = False
        # Drain: park every journey at a step boundary, then carry everything over.
        self.draining = True
        await workflow.wait_condition(
            lambda: all(t.done() for t in self.tasks.values()) and not self.record_in_flight
        )
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
    def on_event(self, event: Event) -> None:
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
            "scheduled": self.scheduled(now),
            # the durable record (CONTRACT.md §8): lines waiting for its database
            "record_pending": len(self.s.unrecorded),
            "why": self._why(),
        }

    @workflow.query(name="seen")
    def seen(self, event_id: str) -> bool:
        """Whether an event with this id was taken already (processed, or waiting in the
        inbox), so that another one with it would be dropped: how ``send-event`` reports a
        duplicate. A query: it adds nothing to history, so no patch is needed."""
        return event_id in self.s.seen_ids or any(e.get("id") == event_id for e in self.s.inbox)

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
        timers = [t["due"] for t in self.s.timers.values()]  # triggers due (CONTRACT.md §4)
        if self.s.inbox or self.busy or self.profile_dirty:
            return iso(self._now())
        if not self.s.instances:
            return min(timers) if timers else None
        if len(deadlines) < len(self.s.instances):
            return iso(self._now())  # a journey is between steps
        return min(deadlines + timers)

    # ------------------------------------------------------------------ triggers

    async def _run_with_triggers(self, inp: CustomerInput) -> None:
        """The main loop with triggers: events, due timers and profile changes, in turn."""
        while True:
            await self._idle(inp)
            if self._should_continue(inp) and not self._due_timers() and not self.profile_dirty:
                return  # (a step's profile change is looked at before continuing as new)
            self.busy = True
            try:
                if self._due_timers():
                    await self._fire_due()
                elif self.profile_dirty:
                    await self._profile_changed(self._now())
                    self._reschedule(self._now())
                elif self.s.inbox:
                    await self._process(self.s.inbox.pop(0))
            finally:
                self.busy = False

    async def _idle(self, inp: CustomerInput) -> None:
        """Until an event, a step's profile change or the next due trigger (one timer)."""

        def ready() -> bool:
            return bool(self.s.inbox) or self.profile_dirty or self._should_continue(inp)

        if ready() or self._due_timers():
            return
        if not self.s.timers:
            await workflow.wait_condition(ready)
            return
        due = min(parse_iso(t["due"]) for t in self.s.timers.values())
        remaining = (due - self._now()).total_seconds()
        try:
            await workflow.wait_condition(ready, timeout=timedelta(seconds=max(remaining, 0.001)))
        except TimeoutError:
            pass

    def _due_timers(self) -> list[str]:
        now = iso(self._now())
        return sorted(k for k, t in self.s.timers.items() if t["due"] <= now)

    def _trigger(self, key: str) -> Trigger:
        found = self.parsed_triggers.get(key)
        if found is None:
            found = self.parsed_triggers[key] = Trigger.from_key(key)
        return found

    def _zone(self):
        return resolve_zone(self.s.profile, self.s.settings.timezone)

    def _reschedule(self, now: datetime) -> None:
        """Recompute every timer trigger's next due time from the profile (deterministic:
        the same state gives the same timers, also after continue-as-new)."""
        keys = [k for k in self.s.triggers if k.startswith(TIMER_KINDS)]
        zone = self._zone()
        timers = {}
        for key in keys:
            trigger = self._trigger(key)
            due = next_due(
                trigger,
                self.s.profile,
                zone,
                now,
                last_at=self.s.last_events.get(trigger.event) if trigger.event else None,
                first_at=self.s.first_event_at or None,
                fired=self.s.fired.get(key),
            )
            if due is not None:
                timers[key] = {"due": iso(due.at), "mark": due.mark, "data": due.data}
        self.s.timers = timers
        # Forget what belongs to triggers the plan no longer has (bounded state).
        live = set(self.s.triggers)
        self.s.fired = {k: v for k, v in self.s.fired.items() if k in live}
        self.s.segments = {k: v for k, v in self.s.segments.items() if k in live}
        awaited = {self._trigger(k).event for k in keys if k.startswith("inactivity:")}
        self.s.last_events = {e: t for e, t in self.s.last_events.items() if e in awaited}

    async def _fire_due(self) -> None:
        now = self._now()
        for key in self._due_timers():
            entry = self.s.timers.pop(key, None)
            if entry is None:
                continue
            self.s.fired[key] = entry["mark"]
            await self._start_by_key(key, entry["data"], now)
        self._reschedule(self._now())

    async def _start_by_key(self, key: str, data: dict, now: datetime) -> None:
        """Start the journeys the trigger ``key`` starts, as the plan store answers now."""
        self.why_cause = {"trigger": str(self._trigger(key))[:WHY_TEXT_CHARS]}
        answer = await workflow.execute_local_activity(
            LOOKUP,
            LookupInput(known=sorted(self.s.plans), trigger=key),
            result_type=LookupResult,
            start_to_close_timeout=LOOKUP_TIMEOUT,
        )
        self.s.triggers, self.s.triggers_at = answer.triggers, iso(now)
        if answer.settings is not None:
            self.s.settings = answer.settings
        for item in answer.journeys:
            if item.journey is not None:
                self.s.plans[item.hash] = item.journey
            self._maybe_start(item.hash, dict(data), now)
        self._journeys_changed()

    async def _profile_changed(self, now: datetime) -> None:
        """After any profile change: exit_when of the journeys in flight, then the
        entering triggers that turned true."""
        self.profile_dirty = False
        for inst in self.s.instances.values():
            journey = self._journey(inst.hash)
            if journey.exit_when is None or inst.goal_reached:
                continue
            value = evaluator.truthy(
                evaluator.evaluate(journey.exit_when, self.interpreter.context(inst, now))
            )
            if value and not inst.exit_state:
                inst.goal_reached, inst.stop_reason = True, "exit"
            inst.exit_state = value
        ctx = {"customer": self.s.profile, "trigger": {}, "event": None, "vars": {}, "now": now}
        entering = []
        for key in self.s.triggers:
            if not key.startswith(SEGMENT_KIND):
                continue
            trigger = self._trigger(key)
            value = evaluator.truthy(evaluator.evaluate(trigger.expr, ctx))
            if value and not self.s.segments.get(key, False):
                entering.append(key)
            self.s.segments[key] = value
        for key in entering:
            await self._start_by_key(key, {}, now)

    def scheduled(self, now: datetime) -> list[dict]:
        """The timer triggers due for this customer (``lifecycle status``)."""
        zone = self._zone()
        out = []
        for key, entry in sorted(self.s.timers.items(), key=lambda kv: kv[1]["due"]):
            trigger = self._trigger(key)
            out.append(
                {
                    "trigger": str(trigger),
                    "at": entry["due"],
                    "local": describe_due(trigger, parse_iso(entry["due"]), zone, now),
                }
            )
        return out

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

    async def _process(self, event: Event) -> None:
        event_id = event.get("id")
        if event_id:
            if event_id in self.s.seen_ids:
                self._remember_event(event, duplicate=True)
                return
            bounded_append(self.s.seen_ids, event_id, SEEN_IDS_LIMIT)
        self.s.events_processed += 1
        self._remember_event(event)
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
        handled = self.policy
        if handled:
            self._subscription(etype, data)
        now = self._now()

        for inst in self.s.instances.values():
            journey = self._journey(inst.hash)
            if journey.goal == etype:
                if not inst.goal_reached:
                    inst.goal_at = iso(now)  # a conversion if within goal_within (§8)
                inst.goal_reached = True
            elif inst.wait and inst.wait["kind"] == "event" and inst.wait["event"] == etype:
                if inst.received is None and self._where_matches(inst, data, now):
                    inst.received = data

        if workflow.patched(PATCH_TRIGGER_CACHE):
            triggered = await self._lookup_cached(etype, now)
        else:
            # Histories recorded before the trigger cache: one lookup per event, answered
            # with a bare list (decoded as such; lookup_result_of takes either shape).
            answer = await workflow.execute_local_activity(
                LOOKUP,
                LookupInput(event_type=etype, known=sorted(self.s.plans)),
                start_to_close_timeout=LOOKUP_TIMEOUT,
            )
            triggered = lookup_result_of(answer).journeys
        if not handled and self.policy:
            # This run began before the contact policy; the lookup just switched it on.
            self._subscription(etype, data)
        for item in triggered:
            if item.journey is not None:
                self.s.plans[item.hash] = item.journey
            self._maybe_start(item.hash, data, now)
        if self.triggers_on:
            if not self.s.first_event_at:
                self.s.first_event_at = iso(now)
            awaited = {
                self._trigger(k).event for k in self.s.triggers if k.startswith("inactivity:")
            }
            if etype in awaited:
                self.s.last_events[etype] = iso(now)
            if isinstance(updates, dict) and updates:
                await self._profile_changed(now)
            self._reschedule(self._now())
        self._journeys_changed()

    async def _lookup_cached(self, etype: str, now: datetime) -> list[LookupItem]:
        """Journeys the event trigger of ``etype`` starts; no lookup at all for an event
        whose trigger key the worker's plan did not list within the last TRIGGER_CACHE_TTL
        (most events, e.g. page views or deliveries, start nothing: the lookup was their
        main cost). Each answer also refreshes the customer-wide settings."""
        key = Trigger(kind="event", event=etype).key
        fresh = self.s.triggers_at and now - parse_iso(self.s.triggers_at) < TRIGGER_CACHE_TTL
        if fresh and etype in SUBSCRIPTION_EVENTS and not self.policy:
            # A run that began before the contact policy asks the worker at once, so an
            # unsubscribe is honoured from its first answer on (PATCH_POLICY_SWITCH).
            fresh = not workflow.patched(PATCH_POLICY_SWITCH)
        if fresh and key not in self.s.triggers:
            return []
        answer = await workflow.execute_local_activity(
            LOOKUP,
            LookupInput(event_type=etype, known=sorted(self.s.plans), trigger=key),
            result_type=LookupResult,
            start_to_close_timeout=LOOKUP_TIMEOUT,
        )
        self.s.triggers, self.s.triggers_at = answer.triggers, iso(now)
        if answer.settings is not None:
            self.s.settings = answer.settings
        return answer.journeys

    def _where_matches(self, inst: Instance, data: dict, now: datetime) -> bool:
        where = inst.wait.get("where")
        if where is None:
            return True
        ctx = self.interpreter.context(inst, now, event=data)
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
            self._decided(journey, "not_started", "when", ctx)
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
            self._decided(journey, "not_started", "active", ctx, key=key, instance=active[0])
            return
        if self.bounded and self._state_size() > STATE_START_LIMIT:
            self._note(
                "not_started",
                journey=journey.name,
                reason="state_limit",
                detail=f"the customer's state is past {STATE_START_LIMIT} bytes",
            )
            self._decided(journey, "not_started", "state_limit", ctx, key=key)
            return
        if self.bounded and len(self.s.instances) >= ACTIVE_LIMIT:
            self._note(
                "not_started",
                journey=journey.name,
                reason="active_limit",
                detail=f"{ACTIVE_LIMIT} journeys are in flight for this customer",
            )
            self._decided(journey, "not_started", "active_limit", ctx, key=key)
            return
        last = self.s.entries.get(entry_key)
        mode = journey.reentry.mode
        if last is not None:
            if mode == "never":
                self._decided(journey, "not_started", "reentry", ctx, key=key, last_entry=last)
                return
            if mode == "after" and now - parse_iso(last) < timedelta(
                seconds=journey.reentry.seconds
            ):
                until = iso(parse_iso(last) + timedelta(seconds=journey.reentry.seconds))
                self._decided(journey, "not_started", "reentry", ctx, key=key, until=until)
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
        if self.triggers_on and journey.exit_when is not None:
            # exit_when ends the journey when it *turns* true after a later profile change
            ctx = self.interpreter.context(inst, now)
            inst.exit_state = evaluator.truthy(evaluator.evaluate(journey.exit_when, ctx))
        self.s.instances[inst.id] = inst
        if journey.holdout and self.interpreter.held_out(journey):
            self._log(inst, "start", plan=plan_hash, holdout=True)
        else:
            self._log(inst, "start", plan=plan_hash)
        self._decided(journey, "started", "", ctx, key=key, instance=inst.id)
        self._start_task(inst)

    # ------------------------------------------------------------------ why

    def _remember_event(self, event: Event, duplicate: bool = False) -> None:
        """The event, for ``lifecycle why`` (bounded durable state; no command, no patch);
        the entry decisions it leads to carry its number."""
        self.s.recent_events_total += 1
        line = {
            "n": self.s.recent_events_total,
            "at": iso(self._now()),
            "type": str(event.get("type", ""))[:WHY_TEXT_CHARS],
            "id": str(event.get("id") or "")[:WHY_TEXT_CHARS],
        }
        if duplicate:
            line["duplicate"] = True  # dropped: an event with this id was taken before
        bounded_append(self.s.recent_events, line, RECENT_EVENTS_LIMIT)
        self.why_cause = {"event": line["n"], "trigger": line["type"]}

    def _decided(self, journey: Journey, outcome: str, reason: str, ctx: dict, **fields) -> None:
        """Why ``journey`` did (``started``) or did not (``not_started``, with the reason:
        when, reentry, active, state_limit, active_limit) start, for ``lifecycle why``:
        with the ``when`` and the values of its operands, each one summarised. Bounded
        durable state only (no command, so no patch)."""
        self.s.decisions_total += 1
        line = {"n": self.s.decisions_total, "at": iso(self._now()), "journey": journey.name}
        line.update(self.why_cause)
        line["outcome"] = outcome
        if reason:
            line["reason"] = reason
        if journey.when is not None:
            line["when"] = journey.when.src[:WHY_TEXT_CHARS]
            line["values"] = {
                text[:WHY_VALUE_BYTES]: _brief(value)
                for text, value in explain.operand_values(journey.when, ctx).items()
            }
        if outcome == "started" and journey.holdout:
            line["holdout"] = self.interpreter.held_out(journey)
            line["holdout_share"] = journey.holdout  # basis points (CONTRACT.md §8)
        line.update({k: v for k, v in fields.items() if v not in ("", None)})
        bounded_append(self.s.decisions, line, DECISIONS_LIMIT)

    def _why(self) -> dict:
        """The ``why`` key of the status query (``lifecycle why``)."""
        return {
            "decisions": self.s.decisions,
            "decisions_total": self.s.decisions_total,
            "events": self.s.recent_events,
            "events_total": self.s.recent_events_total,
        }

    # Bounded by their own limits, and left out of the state-size check so that a
    # history recorded before them decides every start as it did then.
    _UNCOUNTED = (
        "decisions",
        "decisions_total",
        "recent_events",
        "recent_events_total",
        "unrecorded",
        "record_dropped",
    )

    def _state_size(self) -> int:
        state = dataclasses.asdict(self.s)
        for name in self._UNCOUNTED:
            state.pop(name, None)
        return json_size(state)

    def _contact_policy_patched(self) -> bool:
        # A method, so a test can stand in for the engine before the patch (tests/e2e).
        return workflow.patched(PATCH_CONTACT_POLICY)

    @property
    def policy(self) -> bool:
        """The contact policy applies: this run began with it (PATCH_CONTACT_POLICY), or a
        lookup answer recorded in this run's history said the worker applies it (a run that
        began before the deploy switches on there, deterministically on replay)."""
        return self.policy_patched or self.s.settings.contact_policy

    def _subscription(self, etype: str, data: dict) -> None:
        """The contact policy's events (CONTRACT.md §6): ``customer.unsubscribed`` (what
        the unsubscribe link sends) and ``customer.resubscribed`` set
        ``customer.unsubscribed``; ``email.complained`` unsubscribes and suppresses the
        address (``data.email``, else the profile's)."""
        if etype == "customer.unsubscribed" or etype == "email.complained":
            self.s.profile["unsubscribed"] = True
        elif etype == "customer.resubscribed":
            self.s.profile["unsubscribed"] = False
        if etype == "email.complained":
            address = data.get("email") or self.s.profile.get("email")
            if isinstance(address, str) and "@" in address:
                suppress_address(self.s.suppressed, address)

    # ------------------------------------------------------------------ journeys

    def _journey(self, plan_hash: str) -> Journey:
        journey = self.journeys.get(plan_hash)
        if journey is None:
            journey = journey_from_dict(self.s.plans[plan_hash])
            self.journeys[plan_hash] = journey
        return journey

    def _start_task(self, inst: Instance) -> None:
        self.tasks[inst.id] = asyncio.create_task(self._run_instance(inst))

    async def _run_instance(self, inst: Instance) -> None:
        outcome = await self.interpreter.run(inst, self._journey(inst.hash))
        if outcome is not None:
            self._end(inst, outcome[0], **outcome[1])

    def _end(self, inst: Instance, reason: str, **fields) -> None:
        journey = self._journey(inst.hash)
        if journey.goal:
            # CONTRACT.md §8: the goal event within goal_within of entry is a conversion
            fields["converted"] = reason == "goal" and converted(
                inst.started_at, inst.goal_at, journey.goal_within
            )
        self._log(inst, "end", reason=reason, **fields)
        self.s.instances.pop(inst.id, None)
        self.tasks.pop(inst.id, None)
        self._journeys_changed()

    def _journeys_changed(self) -> None:
        """Keep the search attribute of journeys in flight up to date (after a start, an
        end, a lookup, and when a run begins), so the Temporal UI lists a journey's
        customers. Only when the last lookup answer said the worker's namespace has it
        registered (upserting an unregistered one fails the workflow task), and only when
        the value changes. An upsert is a command: one history event that rides the
        workflow task completion, no extra round trip to the server.

        The guard for replay is that answer, recorded in history (as with
        ``settings.contact_policy``): histories from before it have none, so they replay
        without upserts, and a run that began before the deploy upserts from its first
        answer after it. Not ``workflow.patched`` here: called first after a lookup, its
        marker can land one workflow task later than replay looks for it (a local
        activity's result delivered in a new task), a non-determinism error."""
        if not self.s.settings.search_attributes:
            return
        names = [inst.journey for inst in self.s.instances.values()]
        update = journeys_update(names, workflow.info().typed_search_attributes)
        if update is not None:
            workflow.upsert_search_attributes([update])

    # ------------------------------------------------------------------ effects
    # The interpreter's interface back to the entity (workflows.interpreter.Effects).

    @property
    def state(self) -> CustomerState:
        return self.s

    def now(self) -> datetime:
        return self._now()

    async def wait(self, until, timeout: timedelta) -> None:
        try:
            await workflow.wait_condition(until, timeout=timeout)
        except TimeoutError:
            pass

    async def execute_activity(self, activity: str, arg, **options):
        return await workflow.execute_activity(activity, arg, **options)

    def log(self, inst: Instance, action: str, at: datetime | None = None, **fields) -> None:
        self._log(inst, action, at, **fields)

    def patched(self, patch_id: str) -> bool:
        return workflow.patched(patch_id)

    def profile_changed(self) -> None:
        """A step set a profile field: the main loop looks at entering and exit_when."""
        if self.triggers_on:
            self.profile_dirty = True

    def task_queue(self) -> str:
        return workflow.info().task_queue

    async def send_turn(self, inst: Instance):
        """Marketing sends decide one at a time. Conditions are checked only once every
        task woken at this instant has run, so all the sends due now are in ``turns``
        when the first is let through: the journey that started first (then the lower
        instance number) goes first. Returns the (idempotent) end of the turn."""
        number = inst.id.rsplit(":", 1)[-1]
        ticket = (inst.started_at, int(number) if number.isdigit() else 0, inst.id)
        self.turns.append(ticket)
        self.turns.sort()
        await workflow.wait_condition(lambda: self.turns and self.turns[0] == ticket)

        def end() -> None:
            if ticket in self.turns:
                self.turns.remove(ticket)

        return end

    def note(self, action: str, **fields) -> None:
        self._note(action, **fields)

    # ------------------------------------------------------------------ journal

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
        self._count(inst, action, fields)
        if action == "defer" or fields.get("status") == "suppressed":
            # The worker log says why an email did not go out (not while replaying).
            what = "deferred" if action == "defer" else "suppressed"
            workflow.logger.info(
                "customer %s, journey %s: send %s %s: %s (%s)",
                self.s.customer_id,
                inst.journey,
                fields.get("template", ""),
                what,
                fields.get("reason", ""),
                fields.get("detail", ""),
                extra={"journal": line},
            )

    _METRICS = {
        "start": ("lifecycle_journeys_started", "journeys started"),
        "end": ("lifecycle_journeys_ended", "journeys ended"),
        "conversion": ("lifecycle_conversions", "goal conversions"),
        "message": ("lifecycle_messages", "messages by journey, template, class and status"),
    }

    def _counter(self, which: str):
        """One counter of Temporal's workflow metric meter, made once per run."""
        if which not in self.counters:
            name, description = self._METRICS[which]
            self.counters[which] = workflow.metric_meter().create_counter(name, description)
        return self.counters[which]

    def _count(self, inst: Instance, action: str, fields: dict) -> None:
        """The engine's metrics (CONTRACT.md §8): Temporal's metric meter, which records
        nothing while replaying; the worker serves them with LIFECYCLE_METRICS_PORT."""
        if action not in ("start", "end", "send", "notify", "defer"):
            return
        attrs = {"journey": inst.journey}
        if action == "start":
            self._counter("start").add(1, attrs)
        elif action == "end":
            self._counter("end").add(1, {**attrs, "reason": str(fields.get("reason", ""))})
            if fields.get("converted"):
                self._counter("conversion").add(1, attrs)
        else:
            journey = self.journeys.get(inst.hash)
            attrs["template"] = str(fields.get("template", ""))
            attrs["class"] = (
                "team" if action == "notify" else getattr(journey, "message_class", "marketing")
            )
            attrs["kind"] = action if action != "defer" else "send"
            attrs["status"] = "deferred" if action == "defer" else str(fields.get("status", "sent"))
            self._counter("message").add(1, attrs)

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
        if line["action"] in RECORDED_ACTIONS and self._recording():
            if len(self.s.unrecorded) >= RECORD_PENDING_LIMIT:
                self.s.record_dropped += 1
            bounded_append(self.s.unrecorded, line, RECORD_PENDING_LIMIT)

    # ------------------------------------------------------------------ the durable record

    def _recording(self) -> bool:
        """Measured lines go to the durable record: the worker keeps one, as its latest
        lookup answer said (recorded in history: answers from before the record lack it,
        so older histories replay without it, and a run switches at the same point on
        replay as it did live)."""
        return self.s.settings.record

    async def _record_loop(self) -> None:
        """Hands the lines not yet recorded to the record_journal local activity, in the
        workflow task that wrote them; after a failure, again after RECORD_RETRY, doubling
        up to RECORD_RETRY_MAX (one durable timer per customer while the database is down)."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self.s.unrecorded) and self._recording() and not self.draining
            )
            batch = self.s.unrecorded[:RECORD_BATCH]
            self.record_in_flight = True
            try:
                await workflow.execute_local_activity(
                    RECORD,
                    RecordInput(self.s.customer_id, self.s.epoch, batch),
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except FailureError as err:  # a local activity's failure comes as its cause
                self.record_in_flight = False
                delay = min(RECORD_RETRY * 2 ** min(self.record_failures, 6), RECORD_RETRY_MAX)
                self.record_failures += 1
                workflow.logger.warning(
                    "customer %s: %d journal lines not recorded yet (%s); retrying in %s",
                    self.s.customer_id,
                    len(self.s.unrecorded),
                    getattr(err, "cause", None) or err,
                    delay,
                )
                await workflow.sleep(delay)
                continue
            self.record_in_flight = False
            self.record_failures = 0
            done = {line["seq"] for line in batch}
            self.s.unrecorded = [line for line in self.s.unrecorded if line["seq"] not in done]
