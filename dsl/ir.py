"""The compiled plan: plain, JSON-safe dataclasses.

In: nothing (this module is the contract between the compiler and the runtime).
Out: ``Plan`` / ``Journey`` / step dataclasses, and ``to_dict`` / ``plan_from_dict`` /
``journey_from_dict`` so a plan crosses Temporal's data converter as plain JSON.

This module must stay importable inside Temporal's workflow sandbox: standard library
only, no I/O, no YAML, Lark or Jinja.

Expressions are kept as a JSON tree (``Expr.tree``) plus their source text:

    ["lit", value]                       str | int | float | bool | None
    ["list", [e, ...]]
    ["path", scope, [name, ...]]         scope: "customer" | "trigger" | "event" | "var"
                                         (for "var" the first name is the variable)
    ["not", e]      ["neg", e]
    ["and", a, b]   ["or", a, b]
    ["cmp", op, a, b]                    op: == != < <= > >= in "not in"
    ["arith", op, a, b]                  op: + - * /
    ["call", fname, [e, ...]]            fname: a function of dsl.functions
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Origin:
    """Where a step or journey was written: file path (as given), 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Expr:
    src: str
    tree: list


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    kind: ClassVar[str] = ""
    origin: Origin


@dataclass
class Send(Step):
    kind: ClassVar[str] = "send"
    template: str
    args: dict[str, Expr] = field(default_factory=dict)


@dataclass
class Notify(Step):
    kind: ClassVar[str] = "notify"
    team: str
    address: str
    template: str
    args: dict[str, Expr] = field(default_factory=dict)


@dataclass
class Wait(Step):
    kind: ClassVar[str] = "wait"
    seconds: int


@dataclass
class WaitFor(Step):
    kind: ClassVar[str] = "wait_for"
    event: str
    seconds: int
    where: Expr | None = None
    received: list[Step] = field(default_factory=list)
    timeout: list[Step] = field(default_factory=list)


@dataclass
class If(Step):
    kind: ClassVar[str] = "if"
    cond: Expr
    then: list[Step] = field(default_factory=list)
    else_: list[Step] = field(default_factory=list)


@dataclass
class Call(Step):
    kind: ClassVar[str] = "call"
    activity: str
    args: dict[str, Expr] = field(default_factory=dict)
    bind: str | None = None
    # Copied from the activity registry at compile time, so the workflow never
    # imports developer code to learn how to schedule an activity.
    timeout_seconds: int = 60  # start-to-close: one attempt
    max_attempts: int = 0  # 0: retry until schedule_to_close_seconds is spent
    schedule_to_close_seconds: int = 3600  # all attempts together; then the step fails


@dataclass
class Set(Step):
    kind: ClassVar[str] = "set"
    target: str  # "customer" | "var"
    name: str
    value: Expr


@dataclass
class Exit(Step):
    kind: ClassVar[str] = "exit"


@dataclass
class WaitUntil(Step):
    """``wait until HH:MM`` (``minutes``: after local midnight, in the customer's zone) or
    ``wait until EXPR`` (``at``: an ISO 8601 time; past or null does not wait)."""

    kind: ClassVar[str] = "wait_until"
    minutes: int | None = None
    at: Expr | None = None


@dataclass
class Variant:
    """One branch of a ``split``: its name, its share in basis points (5000 = 50 %) and
    its steps."""

    name: str
    weight: int
    steps: list[Step] = field(default_factory=list)


@dataclass
class Split(Step):
    """``split NAME:`` (CONTRACT.md §8): each customer runs one variant, chosen by
    ``dsl.experiments.assign`` from customer id, journey and experiment name. Its blocks
    are addressed in a position as ``variant:NAME`` (``block``)."""

    kind: ClassVar[str] = "split"
    experiment: str
    variants: list[Variant] = field(default_factory=list)

    def block(self, name: str) -> list[Step]:
        """The steps of the block ``variant:NAME``."""
        wanted = name.removeprefix(VARIANT_BLOCK)
        for v in self.variants:
            if v.name == wanted:
                return v.steps
        raise KeyError(name)


VARIANT_BLOCK = "variant:"  # a split's block in a position: "variant:" + the variant's name


# --------------------------------------------------------------------------- journeys

TRIGGER_KINDS = ("event", "inactivity", "date", "segment")  # CONTRACT.md §7


@dataclass(frozen=True)
class Trigger:
    """What starts a journey (CONTRACT.md §7). ``kind``:

    - ``event``: an event of type ``event`` arrives;
    - ``inactivity``: ``seconds`` have passed since the last ``event`` (or the first event
      of the customer), once per quiet spell;
    - ``date``: the time computed from the profile field ``path`` (a dotted path below
      ``customer``) moved by ``seconds`` (negative: before), at local time ``at``
      (``HH:MM``; empty: 09:00 for a date, the field's own time for a date-time); every
      year on its month and day when ``yearly``;
    - ``segment``: the expression ``expr`` (a JSON tree, source ``src``) over the profile
      turns true after a profile change (``entering``).

    Kinds other than ``event`` are scheduled by the customer entity itself from their
    key (every field is in it), so the lookup protocol keeps its shape."""

    kind: str = "event"
    event: str = ""  # kind "event": the event type; "inactivity": the awaited event
    seconds: int = 0  # "inactivity": the quiet spell; "date": the offset
    path: str = ""  # "date": the customer field, e.g. "birthday"
    yearly: bool = False  # "date": every year on the field's month and day
    at: str = ""  # "date": HH:MM, local time
    src: str = ""  # "segment": the expression's text
    expr: list | None = None  # "segment": the expression's tree (dsl.ir.Expr.tree)

    @property
    def key(self) -> str:
        """The trigger's key in the plan store's index and the customer's trigger cache.
        An event trigger's key is its event type (what answers always carried); other
        kinds are ``kind:`` + their fields as JSON (event types never contain ':')."""
        if self.kind == "event":
            return self.event
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "kind"}
        return f"{self.kind}:" + json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_key(cls, key: str) -> Trigger:
        """The trigger a key stands for (the inverse of ``key``)."""
        kind, sep, rest = key.partition(":")
        if not sep or kind not in TRIGGER_KINDS:
            return cls(kind="event", event=key)
        data = json.loads(rest)
        known = {f.name for f in fields(cls)}
        return cls(kind=kind, **{k: v for k, v in data.items() if k in known})

    def __str__(self) -> str:
        if self.kind == "event":
            return self.event
        if self.kind == "inactivity":
            return f"no {self.event} for {_human(self.seconds)}"
        if self.kind == "segment":
            return f"entering {self.src}"
        text = ("every year on " if self.yearly else "on ") + f"customer.{self.path}"
        if self.seconds:
            text += (" + " if self.seconds > 0 else " - ") + _human(abs(self.seconds))
        return text + (f" at {self.at}" if self.at else "")


def _human(seconds: int) -> str:
    for word, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {word}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def trigger_from_dict(d: dict | str) -> Trigger:
    """A trigger as pinned: a dict, or (plans pinned before triggers had kinds) the
    event type as a string."""
    if isinstance(d, str):
        return Trigger(kind="event", event=d)
    return Trigger(**d)


@dataclass
class Reentry:
    mode: str = "never"  # "never" | "always" | "after"
    seconds: int = 0  # for "after": time since the last entry


@dataclass
class Journey:
    name: str
    trigger: Trigger
    steps: list[Step]
    origin: Origin
    description: str = ""
    when: Expr | None = None
    goal: str | None = None
    key: Expr | None = None
    reentry: Reentry = field(default_factory=Reentry)
    # Further triggers when ``trigger:`` is a list (any one starts the journey), and the
    # condition that ends the journey (reason "exit") once it turns true (CONTRACT.md §7).
    # Left out of the hash while empty, so journeys compiled before them keep their hash.
    also: list[Trigger] = field(default_factory=list)
    exit_when: Expr | None = None
    # Plans pinned before settings became customer state (dsl.contract.CustomerSettings)
    # carry settings.sender and settings.unsubscribe_url here; new plans leave them empty.
    sender: str = ""
    unsubscribe_url: str = ""
    hash: str = ""  # content hash of everything above but hash and origins' positions
    # Contact policy (CONTRACT.md §6): "marketing" | "transactional"; "wait" | "skip".
    message_class: str = "marketing"
    when_capped: str = "wait"
    # Measurement (CONTRACT.md §8): a goal event within ``goal_within`` seconds of entry is
    # a conversion (0: any time); ``holdout`` basis points of entrants are sent nothing.
    goal_within: int = 0
    holdout: int = 0

    @property
    def triggers(self) -> list[Trigger]:
        """Every trigger that starts this journey."""
        return [self.trigger, *self.also]

    def compute_hash(self) -> str:
        data = to_dict(self)
        data.pop("hash", None)
        for name, default in _HASH_DEFAULTS.items():  # hashes of older plans stay the same
            if data.get(name) == default:
                data.pop(name)
        for name in _HASH_OPTIONAL:
            if not data.get(name):
                data.pop(name, None)
        # A trigger's fields beyond kind and event only count when set: an event trigger
        # hashes as it did before triggers had more kinds.
        for t in [data["trigger"], *data.get("also", ())]:
            for k in [k for k, v in t.items() if k not in ("kind", "event") and not v]:
                del t[k]
        blob = json.dumps(_strip_origins(data), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Journey fields added after plans were first hashed: left out of the hash at their
# default, so a journey that does not use them keeps the hash it always had.
_HASH_DEFAULTS = {
    "message_class": "marketing",
    "when_capped": "wait",
    "goal_within": 0,
    "holdout": 0,
}
_HASH_OPTIONAL = ("also", "exit_when")


@dataclass
class Settings:
    sender: str = "Lifecycle <lifecycle@localhost>"
    teams: dict[str, str] = field(default_factory=dict)
    # A shop's own unsubscribe page (templates' unsubscribe_url); "{customer_id}" and
    # "{token}" (the signed token) are filled in. Empty: the API's page under public_url.
    unsubscribe_url: str = ""
    # Where customers reach `lifecycle serve`: every marketing email links to
    # {public_url}/u/{token} (List-Unsubscribe, one-click). Empty: LIFECYCLE_PUBLIC_URL.
    public_url: str = ""
    # Contact policy (CONTRACT.md §6), checked by the compiler (dsl.contact):
    timezone: str = ""  # IANA name for customers without a valid customer.timezone; "" = UTC
    quiet_hours: list[int] | None = None  # [start, end] in minutes after local midnight
    frequency_cap: list[int] | None = None  # [count, seconds]
    consent: Expr | None = None


# The field types a ``schema:`` may declare (CONTRACT.md §7).
FIELD_TYPES = ("text", "number", "bool", "date", "datetime", "email", "timezone", "list", "map")


@dataclass
class Schema:
    """The declared data (``schema:`` in rules): customer fields and each event's data
    fields, by type (``FIELD_TYPES``). ``strict``: an undeclared field is an error."""

    customer: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, str]] = field(default_factory=dict)
    strict: bool = False


@dataclass
class Plan:
    settings: Settings
    journeys: dict[str, Journey]
    schema: Schema | None = None  # None: no schema declared (nothing is checked)


# --------------------------------------------------------------------------- JSON


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON-safe data; steps carry their ``kind``."""
    if isinstance(obj, Trigger):
        # Only the fields its kind sets: an event trigger is {"kind", "event"}, as it was
        # before triggers had more kinds (pinned plans and hashes keep their shape).
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in fields(obj)
            if f.name in ("kind", "event") or getattr(obj, f.name) != f.default
        }
    if isinstance(obj, Step):
        out: dict[str, Any] = {"kind": obj.kind}
        for f in fields(obj):
            out[f.name] = to_dict(getattr(obj, f.name))
        return out
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _strip_origins(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_origins(v) for k, v in data.items() if k != "origin"}
    if isinstance(data, list):
        return [_strip_origins(v) for v in data]
    return data


def _expr(d: dict | None) -> Expr | None:
    return None if d is None else Expr(src=d["src"], tree=d["tree"])


def _args(d: dict) -> dict[str, Expr]:
    return {k: _expr(v) for k, v in d.items()}


def step_from_dict(d: dict) -> Step:
    kind = d["kind"]
    origin = Origin(**d["origin"])
    if kind == "send":
        return Send(origin, d["template"], _args(d["args"]))
    if kind == "notify":
        return Notify(origin, d["team"], d["address"], d["template"], _args(d["args"]))
    if kind == "wait":
        return Wait(origin, d["seconds"])
    if kind == "wait_for":
        return WaitFor(
            origin,
            d["event"],
            d["seconds"],
            _expr(d["where"]),
            [step_from_dict(s) for s in d["received"]],
            [step_from_dict(s) for s in d["timeout"]],
        )
    if kind == "if":
        return If(
            origin,
            _expr(d["cond"]),
            [step_from_dict(s) for s in d["then"]],
            [step_from_dict(s) for s in d["else_"]],
        )
    if kind == "call":
        return Call(
            origin,
            d["activity"],
            _args(d["args"]),
            d["bind"],
            d["timeout_seconds"],
            d["max_attempts"],
            d.get("schedule_to_close_seconds", 3600),  # absent in plans pinned before it
        )
    if kind == "set":
        return Set(origin, d["target"], d["name"], _expr(d["value"]))
    if kind == "exit":
        return Exit(origin)
    if kind == "wait_until":
        return WaitUntil(origin, d.get("minutes"), _expr(d.get("at")))
    if kind == "split":
        variants = [
            Variant(v["name"], v["weight"], [step_from_dict(s) for s in v["steps"]])
            for v in d["variants"]
        ]
        return Split(origin, d["experiment"], variants)
    raise ValueError(f"unknown step kind {kind!r}")


def journey_from_dict(d: dict) -> Journey:
    return Journey(
        name=d["name"],
        trigger=trigger_from_dict(d["trigger"]),
        steps=[step_from_dict(s) for s in d["steps"]],
        origin=Origin(**d["origin"]),
        description=d.get("description", ""),
        when=_expr(d.get("when")),
        goal=d.get("goal"),
        key=_expr(d.get("key")),
        reentry=Reentry(**d.get("reentry", {})),
        also=[trigger_from_dict(t) for t in d.get("also", ())],
        exit_when=_expr(d.get("exit_when")),
        sender=d.get("sender", ""),
        unsubscribe_url=d.get("unsubscribe_url", ""),
        hash=d.get("hash", ""),
        message_class=d.get("message_class", "marketing"),
        when_capped=d.get("when_capped", "wait"),
        goal_within=d.get("goal_within", 0),
        holdout=d.get("holdout", 0),
    )


def plan_from_dict(d: dict) -> Plan:
    schema = d.get("schema")
    return Plan(
        settings=_settings(d["settings"]),
        journeys={k: journey_from_dict(v) for k, v in d["journeys"].items()},
        schema=Schema(**schema) if isinstance(schema, dict) else None,
    )


def _settings(d: dict) -> Settings:
    d = dict(d)
    d["consent"] = _expr(d.get("consent"))
    return Settings(**d)
