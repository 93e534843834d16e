"""The contract between the customer workflow and the worker, defined once.

In: nothing (this module is imported by both sides). Out:

- the search attribute ``JOURNEYS_ATTRIBUTE`` (of ``JOURNEYS_ATTRIBUTE_TYPE``);
- activity names: ``SEND_EMAIL``, ``LOOKUP``, ``RECORD``, ``CALL_PREFIX`` + a registered activity's
  name (``call_activity_name``), and ``calls_task_queue`` (where those calls run);
- each activity's input and result dataclass: ``SendEmailInput`` / ``SendEmailResult``,
  ``LookupInput`` / ``LookupResult`` (with ``LookupItem`` and ``CustomerSettings``),
  ``RecordInput`` (the record activity returns nothing),
  ``CallInput`` (a call's result is the activity's own JSON value);
- the event (``Event``, CONTRACT.md §2) and ``parse_event`` / ``EventError``, which every
  way in uses to check one, with its limits (``MAX_EVENT_BYTES`` ...).

Wire compatibility: Temporal's default converter turns these dataclasses into JSON
objects with exactly their field names, the same objects the workflow used to build as
dicts; running customers and the recorded histories (tests/workflows/histories/) decode
into them. Add fields only with defaults; never rename one.

Importable inside Temporal's workflow sandbox: standard library only, no engine imports.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Required, TypedDict

# --------------------------------------------------------------------------- names

SEND_EMAIL = "send_email"
LOOKUP = "lookup_journeys"
RECORD = "record_journal"  # the durable record of journeys (engine.runtime.record)
# The journal lines that go into the durable record: what measurement counts.
RECORDED_ACTIONS = frozenset({"start", "split", "send", "notify", "end"})
# A rule's `call NAME(...)` runs the Temporal activity "call.NAME".
CALL_PREFIX = "call."
# Developers' activities (rules' `call`) run on their own task queue, beside the main
# one, with their own worker slots: a slow or stuck one cannot take email's slots.
CALLS_QUEUE_SUFFIX = "-calls"


def call_activity_name(name: str) -> str:
    """The Temporal activity name of the registered activity ``name``."""
    return CALL_PREFIX + name


def calls_task_queue(task_queue: str) -> str:
    """The task queue of the custom activities that go with the workflows of ``task_queue``."""
    return task_queue + CALLS_QUEUE_SUFFIX


# The custom search attribute each customer workflow keeps up to date: the sorted names of
# its journeys in flight, so the Temporal UI lists "everyone in win-back"
# (``LifecycleJourneys = "win-back"``). The embedded dev server registers it; a cluster
# needs ``temporal operator search-attribute create`` (docs/operations.md).
JOURNEYS_ATTRIBUTE = "LifecycleJourneys"
JOURNEYS_ATTRIBUTE_TYPE = "KeywordList"


# --------------------------------------------------------------------------- send_email


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
    # The shop's own unsubscribe page (settings.unsubscribe_url; the activity fills in
    # {token} and {customer_id}); sends recorded before public_url existed had
    # {customer_id} filled in already.
    unsubscribe_url: str = ""
    sent_at: str = ""  # ISO 8601 UTC from workflow.now(): the Date header
    public_url: str = ""  # settings.public_url: where `lifecycle serve` is reached
    # "marketing" (List-Unsubscribe, unsubscribe_url) | "transactional" (neither)
    message_class: str = "marketing"


@dataclass
class SendEmailResult:
    status: str  # "sent" | "duplicate" | "bounced" | "suppressed" (address on the suppression list)
    message_id: str = ""
    subject: str = ""
    to: str = ""
    detail: str = ""


# --------------------------------------------------------------------------- lookup


@dataclass
class LookupInput:
    """What the customer asks the worker's plan store: the journeys that ``trigger`` starts.

    ``trigger`` is a trigger key (``dsl.ir.Trigger.key``); an event trigger's key is the
    event type itself, and empty means the event trigger of ``event_type``."""

    event_type: str = ""
    known: list[str] = field(default_factory=list)  # plan hashes the customer has pinned
    trigger: str = ""

    @property
    def trigger_key(self) -> str:
        return self.trigger or self.event_type


@dataclass
class LookupItem:
    hash: str
    journey: dict | None = None  # the compiled journey (IR dict) unless its hash was known


@dataclass
class CustomerSettings:
    """Settings that concern the whole customer, not one journey (``settings:`` in rules):
    kept in the customer's state, refreshed by each lookup."""

    sender: str = ""
    unsubscribe_url: str = ""  # a shop's own page; "{customer_id}" / "{token}" are filled in
    public_url: str = ""  # where customers reach `lifecycle serve` (links /u/{token})
    # Contact policy (CONTRACT.md §6), as compiled from settings (dsl.ir.Settings):
    timezone: str = ""  # IANA name; "" = UTC
    quiet_hours: list[int] | None = None  # [start, end] minutes after local midnight
    frequency_cap: list[int] | None = None  # [count, seconds]
    consent: list | None = None  # an expression tree (dsl.ir.Expr.tree)
    # Set by every plan store that applies the contact policy: a customer whose workflow
    # run began before it (no contact-policy-v1 marker) applies it from the first answer
    # that says so, a point recorded in its history (workflows/customer.py).
    contact_policy: bool = False
    # Set by a worker that keeps the durable record of journeys (CONTRACT.md §8,
    # ``engine.runtime.record``): the customer hands its measured journal lines to the
    # ``record_journal`` local activity.
    record: bool = False
    # Set by the worker when its namespace has the JOURNEYS_ATTRIBUTE search attribute
    # registered: only then does the customer upsert it (an unregistered one would fail the
    # workflow task). False in answers recorded before it existed, and on test servers.
    search_attributes: bool = False


@dataclass
class RecordInput:
    """Journal lines for the durable record: starts, splits, messages and ends."""

    customer_id: str
    epoch: str  # the entity's epoch: with each line's ``seq``, the row's identity
    lines: list[dict] = field(default_factory=list)


@dataclass
class LookupResult:
    journeys: list[LookupItem] = field(default_factory=list)
    # Every trigger key of the current plan: the customer skips the lookup for an event
    # whose key is not among them (its trigger cache). An event trigger's key is the event
    # type, as in the answers recorded before triggers had kinds.
    triggers: list[str] = field(default_factory=list)
    settings: CustomerSettings | None = None  # None in answers recorded before it existed


def lookup_result_of(answer: Any) -> LookupResult:
    """The lookup answer in any shape it ever had: a list of items (recorded before the
    trigger cache), or the ``LookupResult`` object."""
    if isinstance(answer, LookupResult):
        return answer
    if isinstance(answer, list):
        return LookupResult(journeys=[_item(i) for i in answer])
    settings = answer.get("settings")
    return LookupResult(
        journeys=[_item(i) for i in answer.get("journeys", ())],
        triggers=list(answer.get("triggers", ())),
        settings=CustomerSettings(**settings) if isinstance(settings, dict) else settings,
    )


def _item(item: Any) -> LookupItem:
    if isinstance(item, LookupItem):
        return item
    return LookupItem(hash=item["hash"], journey=item.get("journey"))


# --------------------------------------------------------------------------- call


@dataclass
class CallInput:
    """The input of every ``call.NAME`` activity: the rule's arguments, and the context the
    runtime fills into the activity's input dataclass when it declares those fields."""

    args: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)  # customer_id, journey, idempotency_key


# --------------------------------------------------------------------------- events

# CONTRACT.md §2: what every way in (send-event, the Python client, the HTTP API,
# simulate) accepts; parse_event enforces them.
MAX_EVENT_BYTES = 32 * 1024  # one event's JSON, UTF-8
MAX_EVENT_DEPTH = 32  # nested objects/lists; the event object itself is level 1
MAX_CUSTOMER_ID_CHARS = 256
MAX_NAME_CHARS = 256  # an event's `type` and `id`


class Event(TypedDict, total=False):
    """One event (CONTRACT.md §2) as ``parse_event`` returns it and the entity's ``event``
    signal takes it: a JSON object, so events recorded in histories decode unchanged."""

    type: Required[str]
    customer_id: Required[str]
    id: str
    at: str  # ISO 8601 (or, in a simulation, an offset such as +2d)
    customer: dict  # merged into the profile
    data: dict  # what trigger.* / event.* read


ALLOWED_KEYS = {"id", "type", "customer_id", "at", "customer", "data"}
# A simulation's `at` may be an offset from its start: +0s, +2d, +1d6h (engine.tools.simulator).
from dsl.clock import OFFSET_RE, parse_iso  # noqa: E402

# The characters that matter for nesting: brackets, and quotes and backslashes (so a
# bracket inside a string does not count).
_NESTING_CHARS = re.compile(r'[\[\]{}"\\]')


class EventError(ValueError):
    """An event that does not follow CONTRACT.md §2."""


def parse_event(raw: str | dict, *, where: str = "event", allow_offset: bool = False) -> Event:
    """Check an event against CONTRACT.md §2 and return it normalised (``customer`` and
    ``data`` default to {}). ``allow_offset``: ``at`` may be an offset (simulations).

    Limits are checked before the JSON is decoded, so a 10,000-deep or 10 MB input is
    refused in linear time and never reaches the recursive decoder."""
    if isinstance(raw, str):
        raw = _decode(raw, where)
    elif isinstance(raw, dict):
        _check_tree(raw, where)
    if not isinstance(raw, dict):
        raise EventError(f"{where}: error: an event is a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - ALLOWED_KEYS
    if unknown:
        raise EventError(
            f"{where}: error: unknown key(s) {', '.join(sorted(unknown))}; "
            f"an event has {', '.join(sorted(ALLOWED_KEYS))}"
        )
    for name, limit in (("type", MAX_NAME_CHARS), ("customer_id", MAX_CUSTOMER_ID_CHARS)):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise EventError(f"{where}: error: '{name}' is required and must be a non-empty string")
        _check_text(value, name, limit, where)
    if "id" in raw:
        if not isinstance(raw["id"], str) or not raw["id"]:
            raise EventError(
                f"{where}: error: 'id' must be a non-empty string, got {_json_kind(raw['id'])}"
                + (f'; write it as "id": "{raw["id"]}"' if _is_number(raw["id"]) else "")
            )
        _check_text(raw["id"], "id", MAX_NAME_CHARS, where)
    if "at" in raw:
        _check_at(raw["at"], where, allow_offset)
    for name in ("customer", "data"):
        if name in raw and not isinstance(raw[name], dict):
            raise EventError(f"{where}: error: '{name}' must be a JSON object")
    event: Event = {
        "type": raw["type"].strip(),
        "customer_id": raw["customer_id"].strip(),
        "customer": raw.get("customer") or {},
        "data": raw.get("data") or {},
    }
    if "id" in raw:
        event["id"] = raw["id"]
    if "at" in raw:
        event["at"] = raw["at"].strip()
    return event


def _decode(text: str, where: str) -> Any:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise EventError(_too_big(size, where))
    if max_depth(text) > MAX_EVENT_DEPTH:
        raise EventError(_too_deep(where))
    try:
        return loads_finite(text)
    except json.JSONDecodeError as err:
        raise EventError(
            f"{where}:{err.lineno}:{err.colno}: error: not valid JSON: {err.msg}"
        ) from None
    except _NotFinite as err:
        raise EventError(f"{where}: error: {err}") from None
    except ValueError as err:  # an integer of more than 4,300 digits
        raise EventError(f"{where}: error: not a usable JSON number: {err}") from None


def loads_finite(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers out of float range (ValueError
    saying so): what every way in decodes JSON with (one event, an HTTP body)."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def max_depth(text: str) -> int:
    """How deeply brackets nest in ``text`` (JSON or not), in one linear pass."""
    depth = deepest = 0
    in_string, escaped = False, -1  # escaped: the index of the character after a backslash
    for match in _NESTING_CHARS.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped:
                continue
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(
        f"{name} is not a JSON number (numbers must be finite); send null or a string instead"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(
            f"the number {text} is out of range (numbers must be finite, at most about "
            "1.8e308); send it as a string"
        )
    return value


def _check_tree(value: dict, where: str) -> None:
    """The same limits for an event given as a dict (the Python client), without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EVENT_DEPTH:
            raise EventError(_too_deep(where))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list | tuple))
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        raise EventError(
            f"{where}: error: numbers must be finite (NaN and infinity are not JSON); "
            "send null or a string instead"
        ) from None
    except TypeError as err:
        raise EventError(f"{where}: error: not JSON data: {err}") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise EventError(_too_big(size, where))


def _too_big(size: int, where: str) -> str:
    return (
        f"{where}: error: the event is {size:,} bytes of JSON; at most {MAX_EVENT_BYTES:,} "
        "(32 KB) are allowed: keep large data out of events (send an id or a link instead)"
    )


def _too_deep(where: str) -> str:
    return (
        f"{where}: error: the event is nested more than {MAX_EVENT_DEPTH} levels deep; "
        f"flatten 'customer' / 'data' to at most {MAX_EVENT_DEPTH} levels"
    )


def _check_text(value: str, name: str, limit: int, where: str) -> None:
    if len(value) > limit:
        raise EventError(
            f"{where}: error: '{name}' is {len(value):,} characters long; "
            f"at most {limit} are allowed"
        )
    for i, ch in enumerate(value):
        if not ch.isprintable():
            raise EventError(
                f"{where}: error: '{name}' contains the non-printable character U+{ord(ch):04X} "
                f"at position {i + 1}; use printable characters only (no line breaks, tabs "
                "or control characters)"
            )


def _check_at(value: Any, where: str, allow_offset: bool) -> None:
    forms = "ISO 8601 (2026-03-01T10:00:00Z)" + (
        " or an offset from the start (+0s, +2d, +1d6h)" if allow_offset else ""
    )
    if isinstance(value, str):
        text = value.strip()
        if allow_offset and OFFSET_RE.match(text):
            return
        try:
            parse_iso(text)
            return
        except ValueError:
            pass
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise EventError(f"{where}: error: 'at' is not a time: {shown!r}; write it as {forms}")
    raise EventError(f"{where}: error: 'at' must be a string in {forms}, got {_json_kind(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return f"the number {value}"
    if isinstance(value, str):
        return "an empty string"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"
