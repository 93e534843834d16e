"""The customer entity's durable state, as plain JSON-safe dataclasses.

In: nothing. Out: ``CustomerInput`` (the workflow's argument, carried across
continue-as-new), ``CustomerState`` (with the customer-wide settings) and ``Instance`` (one running journey: its pinned plan
hash, position, variables and what it waits for), and the small helpers that walk a
position path through a journey's steps.

A position is a list: ``[2]`` is the third top-level step; ``[2, "timeout", 0]`` is the
first step of that step's ``timeout`` block. Everything an instance needs to continue is
in ``Instance``, so a journey can be parked at any step boundary and resumed in the next
run after continue-as-new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dsl.contract import CustomerSettings
from dsl.ir import VARIANT_BLOCK, Step

# How many event ids and journal lines a customer remembers (carried across
# continue-as-new; bounded so history payloads stay small).
SEEN_IDS_LIMIT = 1000
JOURNAL_LIMIT = 500
# Bounds on what one customer's state may hold (docs/reliability.md): the state is the
# continue-as-new payload, and Temporal fails a workflow task whose payload passes 2 MB.
PROFILE_LIMIT_BYTES = 64 * 1024  # the profile as JSON; an update past it is refused
VARS_LIMIT_BYTES = 16 * 1024  # one journey's variables as JSON (call results, set NAME)
ACTIVE_LIMIT = 10  # journeys in flight at once; a start beyond it is refused and reported
STATE_START_LIMIT = 1024 * 1024  # no journey starts while the whole state is past this
JOURNAL_VALUE_BYTES = 1024  # a journal field (a call result) longer than this is summarised
# Continue-as-new carries the unprocessed events too: carry at most this much of them
# (the rest are processed first), unless history is this many times its limit.
INBOX_CARRY_BYTES = 256 * 1024
INBOX_HISTORY_FACTOR = 4
# Contact policy (CONTRACT.md §6): addresses suppressed after a hard bounce or complaint,
# and the times of the marketing emails sent (what the frequency cap counts; a cap
# counts at most dsl.contact.MAX_CAP_COUNT = 100 emails). ~20 x 60 + 100 x 22 bytes.
SUPPRESSED_LIMIT = 20
MARKETING_SENT_LIMIT = 100
# The durable record (CONTRACT.md §8, engine.runtime.record): journal lines not yet
# written to the record database, at most this many (~300 bytes each) while it is down.
RECORD_PENDING_LIMIT = 500
# `lifecycle why` (CONTRACT.md §8): the latest entry decisions and events a customer keeps,
# each operand (at most dsl.explain.MAX_OPERANDS = 10) and its value cut at WHY_VALUE_BYTES:
# at most ~50 x 2.8 KB + 50 x 0.7 KB, typically 50 x 0.3 KB + 50 x 0.1 KB.
DECISIONS_LIMIT = 50
RECENT_EVENTS_LIMIT = 50
WHY_VALUE_BYTES = 120
WHY_TEXT_CHARS = 300  # a `when` source text or an event id/type longer than this is cut


@dataclass
class Instance:
    id: str
    journey: str
    hash: str
    key: str
    trigger: dict
    started_at: str
    pos: list = field(default_factory=lambda: [0])
    vars: dict = field(default_factory=dict)
    event: dict | None = None  # the event received by the innermost finished `wait for`
    # What the step at ``pos`` waits for: {"pos": [...], "kind": "timer" | "event" | "defer",
    # "deadline": ISO, "event": type, "where": tree | None, "origin": "file:line:col";
    # "defer" (a send held by the contact policy) also has "reason" and "detail"}
    wait: dict | None = None
    received: dict | None = None  # set by the event router when `wait` is satisfied
    goal_reached: bool = False
    doing: str = ""  # the step being executed (for `lifecycle status`)
    # Why the journey stops once ``goal_reached`` is set: "" is the goal, "exit" its
    # exit_when turning true; exit_state is what exit_when gave after the last profile change.
    stop_reason: str = ""
    exit_state: bool | None = None
    goal_at: str = ""  # when the goal event came (ISO): a conversion if within goal_within


@dataclass
class CustomerState:
    customer_id: str
    profile: dict = field(default_factory=dict)
    plans: dict[str, dict] = field(default_factory=dict)  # hash -> pinned journey (IR dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    entries: dict[str, str] = field(default_factory=dict)  # "journey|key" -> last entry ISO
    seen_ids: list[str] = field(default_factory=list)
    inbox: list[dict] = field(default_factory=list)  # events not processed yet
    journal: list[dict] = field(default_factory=list)
    seq: int = 0
    events_processed: int = 0
    epoch: str = ""  # set once, from the first run's id; kept across continue-as-new
    triggers: list[str] = field(default_factory=list)  # the plan's trigger keys (dsl.ir.Trigger)
    triggers_at: str = ""  # when ``triggers`` was last fetched (ISO)
    journal_seq: int = 0  # journal lines ever written; each line carries its number
    # Customer-wide settings (sender, unsubscribe link), from the latest lookup answer;
    # journeys pinned before they were customer state carry their own copy.
    settings: CustomerSettings = field(default_factory=CustomerSettings)
    # Contact policy (CONTRACT.md §6; bounded by SUPPRESSED_LIMIT, MARKETING_SENT_LIMIT):
    suppressed: list[str] = field(default_factory=list)  # addresses, lower case
    marketing_sent: list[str] = field(default_factory=list)  # ISO times, oldest first
    zone_warned: str = ""  # the invalid customer.timezone last reported (reported once)
    # Triggers that are not events (CONTRACT.md §7), recomputed from the profile and the
    # plan's trigger keys after every change (workflows.customer, dsl.schedule):
    first_event_at: str = ""  # the first event processed (an inactivity spell's start)
    last_events: dict[str, str] = field(default_factory=dict)  # awaited type -> last ISO
    timers: dict[str, dict] = field(default_factory=dict)  # key -> {due, mark, data}
    fired: dict[str, str] = field(default_factory=dict)  # key -> mark of its last firing
    segments: dict[str, bool] = field(default_factory=dict)  # entering key -> held last
    # The durable record (RECORD_PENDING_LIMIT): lines not yet recorded, and how many
    # were dropped unrecorded because the database stayed down past the bound.
    unrecorded: list[dict] = field(default_factory=list)
    record_dropped: int = 0
    # Why journeys did or did not start (`lifecycle why`; bounded by DECISIONS_LIMIT and
    # RECENT_EVENTS_LIMIT; workflows.customer._decided): one line per journey an event or
    # trigger could start, and the events taken (type, id, time), each numbered.
    decisions: list[dict] = field(default_factory=list)
    decisions_total: int = 0
    recent_events: list[dict] = field(default_factory=list)
    recent_events_total: int = 0


@dataclass
class CustomerInput:
    customer_id: str
    state: CustomerState | None = None
    # Continue-as-new once history reaches this many events (Temporal warns at 10,240);
    # tests lower it to exercise continue-as-new.
    history_limit: int = 5000
    # Seconds added to workflow time: set by `lifecycle simulate` so expressions, the
    # journal and email Date headers see simulated time; 0 in production.
    clock_offset: float = 0.0
    # Heartbeat timeout of the send activity: how soon a send on a worker that died is
    # retried elsewhere. Tests lower it; the timeout is not compared on replay.
    send_heartbeat_seconds: float = 15.0


def resolve_step(steps: list[Step], pos: list) -> Step | None:
    """The step at ``pos``, or None when ``pos`` is one past the end of its block."""
    block = steps
    for i in range(0, len(pos) - 1, 2):
        parent = block[pos[i]]
        name = pos[i + 1]
        if name.startswith(VARIANT_BLOCK):
            block = parent.block(name)  # a split's variant (dsl.ir.Split)
        else:
            block = getattr(parent, name)
    index = pos[-1]
    return block[index] if index < len(block) else None


def enter_block(pos: list, block: str) -> None:
    pos.extend([block, 0])


def advance(pos: list) -> None:
    pos[-1] += 1


def leave_block(pos: list) -> bool:
    """Step out of a finished block to the step after its parent; False at top level."""
    if len(pos) == 1:
        return False
    del pos[-2:]
    pos[-1] += 1
    return True


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (what it costs in a payload)."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


def summarise(value: Any, limit: int = JOURNAL_VALUE_BYTES) -> Any:
    """``value`` itself when small; else a note of its size (journal lines stay small)."""
    size = json_size(value)
    return value if size <= limit else {"omitted": f"{size} bytes"}


def position_label(pos: list) -> str:
    return ".".join(str(p) for p in pos)


def bounded_append(items: list, item: Any, limit: int) -> None:
    items.append(item)
    if len(items) > limit:
        del items[: len(items) - limit]
