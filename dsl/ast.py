"""The syntax tree of one step line or expression, with source spans.

In: built by ``dsl.parser`` from Lark's tree (one class per grammar alias).
Out: plain dataclasses the compiler checks and lowers to ``dsl.ir``. Every node carries
``start``/``end``: 0-based character offsets inside the text it was parsed from (a YAML
scalar), so an error can point at the exact token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- expressions


@dataclass
class Node:
    start: int
    end: int


@dataclass
class Lit(Node):
    value: Any  # str | int | float | bool | None


@dataclass
class ListLit(Node):
    items: list[Node]


@dataclass
class Path(Node):
    names: list[str]
    starts: list[int]  # offset of each name


@dataclass
class Func(Node):
    name: str
    args: list[Node]


@dataclass
class Not(Node):
    operand: Node


@dataclass
class Neg(Node):
    operand: Node


@dataclass
class BoolOp(Node):
    op: str  # "and" | "or"
    left: Node
    right: Node
    op_start: int


@dataclass
class Cmp(Node):
    op: str  # == != < <= > >= in "not in"
    left: Node
    right: Node
    op_start: int


@dataclass
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node
    op_start: int


# --------------------------------------------------------------------------- step parts


@dataclass
class Duration(Node):
    amount: str  # the number as written
    negative: bool
    unit: str
    unit_start: int


@dataclass
class Kwarg(Node):
    name: str
    value: Node


@dataclass
class Name(Node):
    """A bare word in a step: a template, team, activity, variable or event name."""

    text: str


# --------------------------------------------------------------------------- steps


@dataclass
class SendStep(Node):
    template: Name
    args: list[Kwarg] = field(default_factory=list)


@dataclass
class NotifyStep(Node):
    team: Name
    template: Name
    args: list[Kwarg] = field(default_factory=list)


@dataclass
class WaitStep(Node):
    duration: Duration


@dataclass
class WaitForStep(Node):
    event: Name
    where: Node | None
    within: Duration | None


@dataclass
class IfStep(Node):
    cond: Node


@dataclass
class CallStep(Node):
    activity: Name
    args: list[Kwarg]
    bind: Name | None


@dataclass
class SetStep(Node):
    target: Path
    value: Node


@dataclass
class ExitStep(Node):
    pass


@dataclass
class WaitUntilStep(Node):
    """``wait until 09:30`` (``time``, at ``time_start``) or ``wait until EXPR`` (``at``)."""

    time: str | None = None
    time_start: int = 0
    at: Node | None = None


@dataclass
class SplitStep(Node):
    """``split NAME`` (a block header: its keys are the variants)."""

    name: Name


@dataclass
class Percent(Node):
    value: str  # the number's text, e.g. "12.5"


@dataclass
class Variant(Node):
    """A split's branch key: ``control 50%``."""

    name: Name
    percent: Percent


@dataclass
class ReentryPolicy(Node):
    mode: str  # never | always | after
    duration: Duration | None = None


@dataclass
class TriggerNode(Node):
    """One trigger (CONTRACT.md §7): ``kind`` is event | inactivity | date | segment."""

    kind: str
    event: Name | None = None  # event, inactivity
    duration: Duration | None = None  # inactivity: the spell; date: the offset
    negative: bool = False  # date: the offset is before the field's time
    path: Path | None = None  # date: the field
    yearly: bool = False
    at: Name | None = None  # date: HH:MM
    expr: Node | None = None  # segment


StepNode = (
    SendStep
    | NotifyStep
    | WaitStep
    | WaitForStep
    | IfStep
    | CallStep
    | SetStep
    | ExitStep
    | WaitUntilStep
    | SplitStep
)
