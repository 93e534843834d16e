"""Rules files → the compiled plan, with every problem found in one run.

In: a rules folder (or one YAML text), the templates (a folder, or its snapshot
``dsl.templates.TemplateSet``), the activity catalogue (``dsl.catalogue.ActivityDecl`` by
name: what a rule may ``call``) and optionally a ``dsl.templates.SampleRenderer`` that
renders each template with sample values under the send-time limits (without one, no
render checks). Nothing of the engine is imported: no activity code, no render processes.
Out: ``CompileResult`` with ``plan`` (``dsl.ir.Plan``, JSON-safe, what the workflows run)
and ``problems`` (every ``RulesError``, in file order; compiling keeps going after each).

Checked here: step and expression syntax, templates (exist and compile in the Jinja
sandbox, and every name a template needs, through its layouts, includes and imports, is
in the scope of each step that sends it), teams, activities and their arguments, names in
scope (``customer``, ``trigger``, ``event`` inside a ``wait for``, journey variables bound
earlier on the same path), functions and their arity, type clashes knowable up front, durations, events,
reentry policies, unreachable steps and duplicate journeys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dsl import ast, ir
from dsl.addresses import AddressError, address_of
from dsl.catalogue import Catalogue
from dsl.clock import UNITS
from dsl.contact import (
    ContactTextError,
    parse_frequency_cap,
    parse_quiet_hours,
    parse_time_of_day,
    zone_ok,
)
from dsl.errors import RulesError, TextError, did_you_mean
from dsl.experiments import BASIS
from dsl.functions import FUNCTIONS
from dsl.loader import (
    ELSE_IF,
    IfBlock,
    LineStep,
    RawJourney,
    RawSchema,
    RawStep,
    RulesFile,
    SplitBlock,
    Text,
    WaitForBlock,
    load_rules,
    load_text,
)
from dsl.parser import (
    parse_duration,
    parse_event,
    parse_percent,
    parse_reentry,
    parse_step,
    parse_trigger,
    parse_variant,
)
from dsl.parser import (
    parse_expression as parse_expression_ast,
)
from dsl.schedule import TIME_RE
from dsl.template_needs import TemplateNeeds
from dsl.templates import (
    SampleRenderer,
    TemplateRenderError,
    TemplateSet,
    available_templates,
    make_environment,
    template_file,
)

ROOTS = ("customer", "trigger", "event")
# The longest wait, `within` or re-entry period (5 years): a longer one is almost surely a
# typo, and a deadline far enough out overflows the calendar inside the workflow.
MAX_DURATION_SECONDS = 1826 * 86400
_JOURNEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TYPE_WORDS = {
    "str": "a string",
    "number": "a number",
    "bool": "a boolean",
    "list": "a list",
    "null": "null",
    "any": "a value",
}
# Functions whose "any" parameter is narrower in practice (a clash knowable up front).
_ACCEPTS = {"len": {0: ("str", "list")}}


@dataclass
class CompileResult:
    plan: ir.Plan
    problems: list[RulesError] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)  # template names the rules use
    # The templates folder as it was read for this compile: what the worker renders from
    # once this plan goes live.
    template_set: TemplateSet | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def compile_rules(
    rules_dir: str | Path,
    templates: str | Path | TemplateSet,
    activities: Catalogue | None = None,
    renderer: SampleRenderer | None = None,
) -> CompileResult:
    """Compile every rules file under ``rules_dir``; see the module docstring.
    ``activities`` None: no activity can be called."""
    files, problems = load_rules(rules_dir)
    return _Compiler(templates, activities, renderer, problems).run(files)


def compile_text(
    yaml_text: str,
    filename: str = "rules.yaml",
    templates: str | Path | TemplateSet = "templates",
    activities: Catalogue | None = None,
    renderer: SampleRenderer | None = None,
) -> CompileResult:
    """Compile one rules file given as text (for tests and tools)."""
    rules_file, problems = load_text(yaml_text, filename)
    return _Compiler(templates, activities, renderer, problems).run([rules_file])


def parse_expression(text: str) -> ir.Expr:
    """One expression → ``ir.Expr`` (src and tree), or ``RulesError`` at ``<expression>``.

    Names other than customer/trigger/event are taken as journey variables; functions,
    arity and type clashes are checked as in a rules file.
    """
    source = _OneLine(text)
    problems: list[RulesError] = []
    lowering = _Lowering(source, _Scope(frozenset(), True, open_vars=True), problems)
    try:
        node = parse_expression_ast(text)
    except TextError as e:
        raise source.error(e.message, e.offset, e.hint) from None
    tree, _ = lowering.lower(node)
    if problems:
        raise problems[0]
    return ir.Expr(text.strip(), tree)


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True)
class _Scope:
    vars: frozenset[str]
    # Inside a wait for's where / received branch: the event type waited for (True when
    # unknown, as for a lone expression); False outside.
    event: bool | str = False
    open_vars: bool = False  # any unknown name is a variable (parse_expression)

    def bind(self, name: str) -> _Scope:
        return _Scope(self.vars | {name}, self.event, self.open_vars)

    def with_event(self, event: bool | str) -> _Scope:
        return _Scope(self.vars, event, self.open_vars)


class _OneLine:
    """Stands in for a ``Text`` when an expression comes without a file."""

    def __init__(self, text: str) -> None:
        self.value = text

    def error(self, message: str, offset: int = 0, hint: str | None = None) -> RulesError:
        return RulesError("<expression>", 1, offset + 1, message, hint, self.value)


# A declared field type (``schema:``) as the compiler's coarse expression type.
_FIELD_COARSE = {
    "text": "str",
    "email": "str",
    "timezone": "str",
    "date": "str",
    "datetime": "str",
    "number": "number",
    "bool": "bool",
    "list": "list",
    "map": "any",
}
_TRIGGER_WORDS = ("no", "every", "on", "entering")
# What ``trigger.*`` holds for journeys started by a trigger that is not an event.
_TRIGGER_DATA = {
    "inactivity": {"last_at": "datetime"},
    "date": {"at": "datetime", "field": "text"},
    "segment": {},
}


@dataclass(frozen=True)
class _Types:
    """What a schema says about the names an expression may read: None means undeclared
    (anything goes, as without a schema)."""

    customer: dict[str, str] | None = None
    trigger: dict[str, str] | None = None
    trigger_what: str = ""  # "the event 'order.placed'", for messages
    events: dict[str, dict[str, str]] | None = None  # declared events' data fields

    def check(
        self, root: str, names: list[str], event: str | None = None
    ) -> tuple[str | None, str, str | None]:
        """(problem, coarse type, hint) of ``root.names``; ``event``: for ``event.*``, the
        type of the event a ``wait for`` received (checked when the schema declares it)."""
        if root == "customer":
            fields = self.customer
        elif root == "event":
            fields = (self.events or {}).get(event) if event else None
        else:
            fields = self.trigger
        if fields is None or not names:
            return None, "any", None
        name = names[0]
        kind = fields.get(name)
        if kind is None:
            if root == "event":
                problem = f"'event.{name}' is not a field of the event '{event}'"
                hint = did_you_mean(name, fields) or "declare it under 'schema: events:'"
            elif root == "customer":
                problem = f"unknown customer field '{name}'"
                hint = did_you_mean(name, fields) or "declare it under 'schema: customer:'"
            else:
                problem = f"'trigger.{name}' is not a field of {self.trigger_what}"
                hint = did_you_mean(name, fields) or (
                    "declare it under 'schema: events:'"
                    if self.trigger_what.startswith("the event")
                    else "fields: " + (", ".join(sorted(fields)) or "none")
                )
            return problem, "any", hint
        if len(names) > 1:
            return None, "any", None
        return None, _FIELD_COARSE.get(kind, "any"), None


def _type_word(t: str) -> str:
    return _TYPE_WORDS.get(t, t)


def _lit_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return "any"


def _fits(actual: str, wanted: str) -> bool:
    return wanted == "any" or actual in ("any", "null") or actual == wanted


class _Lowering:
    """AST expression → ``ir.Expr`` tree and a coarse type, reporting name/type problems."""

    def __init__(
        self, text, scope: _Scope, problems: list[RulesError], types: _Types | None = None
    ) -> None:
        self.text = text
        self.scope = scope
        self.problems = problems
        self.types = types

    def report(self, offset: int, message: str, hint: str | None = None) -> None:
        self.problems.append(self.text.error(message, offset, hint))

    def expr(self, node: ast.Node) -> ir.Expr:
        tree, _ = self.lower(node)
        return ir.Expr(self.text.value[node.start : node.end], tree)

    def lower(self, node: ast.Node) -> tuple[list, str]:
        # Recursion is bounded: the parser refuses trees deeper than MAX_DEPTH.
        if isinstance(node, ast.Lit):
            return ["lit", node.value], _lit_type(node.value)
        if isinstance(node, ast.ListLit):
            return ["list", [self.lower(item)[0] for item in node.items]], "list"
        if isinstance(node, ast.Path):
            tree = self.path(node)
            if self.types is None or node.names[0] not in ("customer", "trigger", "event"):
                return tree, "any"
            event = self.scope.event if isinstance(self.scope.event, str) else None
            problem, kind, hint = self.types.check(node.names[0], node.names[1:], event)
            if problem is not None:
                self.report(node.starts[1] if len(node.starts) > 1 else node.start, problem, hint)
            return tree, kind
        if isinstance(node, ast.Func):
            return self.func(node)
        if isinstance(node, ast.Not):
            return ["not", self.lower(node.operand)[0]], "bool"
        if isinstance(node, ast.Neg):
            tree, t = self.lower(node.operand)
            if not _fits(t, "number"):
                self.report(node.start, f"'-' needs a number, not {_type_word(t)}")
            return ["neg", tree], "number"
        if isinstance(node, ast.BoolOp):
            return [node.op, self.lower(node.left)[0], self.lower(node.right)[0]], "any"
        if isinstance(node, ast.Cmp):
            return self.cmp(node)
        if isinstance(node, ast.Arith):
            return self.arith(node)
        raise TypeError(f"not an expression node: {node!r}")

    def path(self, node: ast.Path) -> list:
        root, rest = node.names[0], node.names[1:]
        if root in ("customer", "trigger"):
            return ["path", root, rest]
        if root == "event":
            if not self.scope.event:
                self.report(
                    node.start,
                    "'event' is only known inside a 'wait for'",
                    "use it in the 'where' condition or the 'received:' steps",
                )
            return ["path", "event", rest]
        if root in self.scope.vars or self.scope.open_vars:
            return ["path", "var", list(node.names)]
        known = list(ROOTS) + sorted(self.scope.vars)
        hint = did_you_mean(root, known)
        if hint is None:
            hint = "names start with customer., trigger., or a variable from 'set' or 'call ... as'"
        self.report(node.start, f"unknown name '{root}'", hint)
        return ["path", "var", list(node.names)]

    def func(self, node: ast.Func) -> tuple[list, str]:
        args = [self.lower(a) for a in node.args]
        tree = ["call", node.name, [t for t, _ in args]]
        fn = FUNCTIONS.get(node.name)
        if fn is None:
            self.report(
                node.start,
                f"unknown function '{node.name}'",
                did_you_mean(node.name, FUNCTIONS) or "functions: " + ", ".join(sorted(FUNCTIONS)),
            )
            return tree, "any"
        lo, hi = fn.arity
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            noun = "argument" if (lo == hi == 1) else "arguments"
            self.report(node.start, f"{fn.name}() takes {want} {noun}, got {len(args)}")
            return tree, fn.returns
        for i, ((_, t), a) in enumerate(zip(args, node.args, strict=True)):
            accepts = _ACCEPTS.get(fn.name, {}).get(i)
            if accepts is not None:
                ok = t in ("any", "null") or t in accepts
                want = " or ".join(_type_word(x) for x in accepts)
            else:
                ok = _fits(t, fn.params[i])
                want = _type_word(fn.params[i])
            if not ok:
                self.report(a.start, f"{fn.name}() needs {want}, not {_type_word(t)}")
        return tree, fn.returns

    def cmp(self, node: ast.Cmp) -> tuple[list, str]:
        (lt, ltype), (rt, rtype) = self.lower(node.left), self.lower(node.right)
        op = node.op
        known = {ltype, rtype} - {"any"}
        if op in ("==", "!="):
            if len(known) == 2 and "null" not in known:
                self.report(
                    node.op_start,
                    f"comparing {_type_word(ltype)} with {_type_word(rtype)} is always "
                    + ("false" if op == "==" else "true"),
                )
        elif op in ("<", "<=", ">", ">="):
            bad = known & {"bool", "list", "null"}
            if bad:
                self.report(node.op_start, f"'{op}' cannot order {_type_word(bad.pop())}")
            elif len(known) == 2:
                self.report(
                    node.op_start,
                    f"'{op}' cannot compare {_type_word(ltype)} with {_type_word(rtype)}",
                )
        else:  # in / not in
            if rtype not in ("any", "null", "list", "str"):
                self.report(
                    node.op_start,
                    f"'{op}' needs a list or a string on its right, not {_type_word(rtype)}",
                )
            elif rtype == "str" and ltype not in ("any", "null", "str"):
                self.report(
                    node.op_start,
                    f"'{op}' a string needs a string on its left, not {_type_word(ltype)}",
                )
        return ["cmp", op, lt, rt], "bool"

    def arith(self, node: ast.Arith) -> tuple[list, str]:
        (lt, ltype), (rt, rtype) = self.lower(node.left), self.lower(node.right)
        op = node.op
        tree = ["arith", op, lt, rt]
        known = [t for t in (ltype, rtype) if t not in ("any", "null")]
        if op == "+":
            if any(t == "bool" for t in known):
                self.report(node.op_start, "'+' cannot add a boolean")
                return tree, "any"
            if len(known) == 2 and known[0] != known[1]:
                self.report(
                    node.op_start,
                    f"'+' cannot add {_type_word(ltype)} and {_type_word(rtype)}",
                    "convert one side, or compare instead",
                )
                return tree, "any"
            return tree, (known[0] if len(known) == 2 else "any")
        for t in known:
            if t != "number":
                self.report(node.op_start, f"'{op}' needs numbers, not {_type_word(t)}")
                break
        return tree, "number"


class _Compiler:
    def __init__(
        self,
        templates,
        activities: Catalogue | None,
        renderer: SampleRenderer | None,
        problems: list[RulesError],
    ):
        self.activities = activities if activities is not None else {}
        self.renderer = renderer
        # Every check reads one snapshot of the folder, the one the plan will render from.
        if isinstance(templates, TemplateSet):
            self.template_set = templates
        else:
            self.template_set = TemplateSet.read(templates)
        self.templates_dir = Path(self.template_set.root)
        # (template file, names the step provides) -> the step's text, rendered at the end
        self.render_checks: dict[tuple[str, frozenset[str]], Text] = {}
        self.problems = problems
        self.settings = ir.Settings()
        self.team_origin: dict[str, Text] = {}
        self.template_ok: dict[str, bool] = {}
        self._env = None
        self._available: list[str] | None = None
        self._needs: TemplateNeeds | None = None
        self.schema: ir.Schema | None = None  # schema: of all files together
        self.types: _Types | None = None  # what the journey being compiled may read
        # (template file, trigger fields or None) -> the first step that sends it
        self.field_checks: dict[tuple[str, tuple | None, str], Text] = {}
        self.experiments: dict[str, int] = {}  # the journey's splits: name -> line

    # ---- driver
    def run(self, files: list[RulesFile]) -> CompileResult:
        self.merge_settings(files)
        self.merge_schema(files)
        journeys: dict[str, ir.Journey] = {}
        first_seen: dict[str, Text] = {}
        for rules_file in files:
            for raw in rules_file.journeys:
                name = raw.name.value
                if name in first_seen:
                    first = first_seen[name]
                    line, col = first.position()
                    self.problems.append(
                        raw.name.error(
                            f"journey '{name}' is defined twice "
                            f"(first at {first.source.path}:{line}:{col})",
                            hint="rename one of them",
                        )
                    )
                    continue
                first_seen[name] = raw.name
                journey = self.journey(raw)
                if journey is not None:
                    journeys[name] = journey
        self.render_samples()
        self.check_template_fields()
        self.problems.sort(key=RulesError.sort_key)
        used = sorted(self.template_ok)
        plan = ir.Plan(self.settings, journeys, self.schema)
        return CompileResult(plan, self.problems, used, self.template_set)

    def error(self, text: Text, message: str, offset: int = 0, hint: str | None = None):
        self.problems.append(text.error(message, offset, hint))

    # ---- settings
    def merge_settings(self, files: list[RulesFile]) -> None:
        seen: dict[str, Text] = {}
        for rules_file in files:
            raw = rules_file.settings
            for key in ("sender", "unsubscribe_url", "public_url"):
                text = getattr(raw, key, None)
                if text is None or self.set_twice(key, text, seen):
                    continue
                if key == "sender" and not self.address_ok(text, "settings.sender"):
                    continue
                if key != "sender" and not self.url_ok(text, f"settings.{key}"):
                    continue
                seen[key] = text
                setattr(self.settings, key, text.value)
            self.merge_contact_settings(raw, seen)
            for team, address in raw.teams:
                if "@" not in address.value:
                    self.error(address, f"team '{team.value}' needs an email address")
                    continue
                if not self.address_ok(address, f"team '{team.value}'"):
                    continue
                first = self.team_origin.get(team.value)
                if first is not None:
                    if self.settings.teams[team.value] != address.value:
                        line, col = first.position()
                        self.error(
                            team,
                            f"team '{team.value}' is defined twice with different addresses "
                            f"(first at {first.source.path}:{line}:{col})",
                        )
                    continue
                self.team_origin[team.value] = team
                self.settings.teams[team.value] = address.value

    def url_ok(self, text: Text, what: str) -> bool:
        """An http(s) address (``public_url``: no query; ``unsubscribe_url`` may have one)."""
        parts = urlsplit(text.value)
        if parts.scheme in ("http", "https") and parts.netloc and not parts.fragment:
            if what != "settings.public_url" or not parts.query:
                return True
        example = (
            "https://mail.example.com"
            if what == "settings.public_url"
            else "https://example.com/unsubscribe?t={token}"
        )
        self.error(
            text,
            f"{what} must be an http(s) address, like {example}",
            0,
            "settings.public_url is where customers reach `lifecycle serve`; "
            "settings.unsubscribe_url is a page of your own ({token}, {customer_id} are filled in)",
        )
        return False

    def set_twice(self, key: str, text: Text, seen: dict[str, Text]) -> bool:
        """Whether ``settings.KEY`` was set before (another file) to another value; reported."""
        first = seen.get(key)
        if first is None or first.value == text.value:
            return False
        line, col = first.position()
        self.error(
            text,
            f"settings.{key} is set twice with different values "
            f"(first at {first.source.path}:{line}:{col})",
        )
        return True

    def merge_contact_settings(self, raw, seen: dict[str, Text]) -> None:
        """settings.timezone / quiet_hours / frequency_cap / consent (CONTRACT.md §6)."""
        for key in ("timezone", "quiet_hours", "frequency_cap", "consent"):
            text = getattr(raw, key)
            if text is None or self.set_twice(key, text, seen):
                continue
            seen[key] = text
            try:
                if key == "timezone":
                    if not zone_ok(text.value):
                        raise ContactTextError(
                            f"unknown time zone '{text.value}'",
                            0,
                            did_you_mean(text.value, _zone_names())
                            or "use an IANA name such as Europe/Berlin or America/New_York",
                        )
                    self.settings.timezone = text.value
                elif key == "quiet_hours":
                    self.settings.quiet_hours = list(parse_quiet_hours(text.value))
                elif key == "frequency_cap":
                    self.settings.frequency_cap = list(parse_frequency_cap(text.value))
                else:
                    self.settings.consent = self.expression(text, _Scope(frozenset()))
            except ContactTextError as e:
                self.error(text, e.message, e.offset, e.hint)

    def merge_schema(self, files: list[RulesFile]) -> None:
        """``schema:`` of every file, as one: a field declared twice must agree."""
        raws: list[RawSchema] = [f.schema for f in files if f.schema is not None]
        if not raws:
            return
        schema = ir.Schema(customer={}, events={})
        seen: dict[tuple[str, str], Text] = {}

        def add(where: dict[str, str], scope: str, name: Text, kind: Text) -> None:
            first = seen.get((scope, name.value))
            if first is not None and where[name.value] != kind.value:
                line, col = first.position()
                self.error(
                    kind,
                    f"{scope} field '{name.value}' is declared as {where[name.value]} "
                    f"(at {first.source.path}:{line}:{col}) and as {kind.value}",
                    hint="declare each field once, with one type",
                )
                return
            seen[(scope, name.value)] = kind
            where[name.value] = kind.value

        for raw in raws:
            schema.strict = schema.strict or raw.strict
            for name, kind in raw.customer:
                add(schema.customer, "customer", name, kind)
            for event, fields in raw.events:
                etype = self.event_name(event)
                if etype is None:
                    continue
                where = schema.events.setdefault(etype, {})
                for name, kind in fields:
                    add(where, f"event '{etype}'", name, kind)
        self.schema = schema

    def address_ok(self, text: Text, what: str) -> bool:
        """One strict address (the same check as at send time), else a problem here: a
        bad From would otherwise fail every customer's email at send time."""
        try:
            address_of(text.value)
        except AddressError as exc:
            reason = str(exc)
            if reason.startswith("not an email address: "):
                message = f"{what} must be an email address, not {reason[22:]}"
            else:
                message = f"{what} must be one email address: {reason.split(': ', 1)[-1]}"
            self.error(
                text,
                message,
                0,
                'write one address, e.g. "Acme <hello@acme.test>"',
            )
            return False
        return True

    # ---- journeys
    def journey(self, raw: RawJourney) -> ir.Journey | None:
        name = raw.name
        if not _JOURNEY_NAME.match(name.value):
            self.error(
                name,
                f"journey name '{name.value}' is not allowed",
                hint="use letters, digits, '-', '_' and '.'",
            )
        fields = raw.fields
        ok = True
        trigger = None
        triggers: list[ir.Trigger | None] = []
        if "trigger" not in fields:
            self.error(name, f"journey '{name.value}' has no trigger", hint="add 'trigger: EVENT'")
            ok = False
        else:
            texts = raw.triggers or [fields["trigger"]]
            triggers = [self.trigger(text) for text in texts]
            ok = all(t is not None for t in triggers)
            trigger = triggers[0] if ok else None
        self.types = self.journey_types(triggers if ok and trigger is not None else None)
        if ok and len({t.key for t in triggers}) < len(triggers):
            self.error(raw.triggers[0], "the same trigger is listed twice", hint="list it once")
        goal = self.event_name(fields["goal"]) if "goal" in fields else None
        root_scope = _Scope(frozenset())
        when = self.expression(fields["when"], root_scope) if "when" in fields else None
        key = self.expression(fields["key"], root_scope) if "key" in fields else None
        exit_when = None
        if "exit_when" in fields:
            exit_when = self.expression(fields["exit_when"], root_scope)
        reentry = self.reentry(fields["reentry"]) if "reentry" in fields else ir.Reentry()
        message_class, when_capped = self.contact_fields(fields)
        goal_within = holdout = 0
        if "goal_within" in fields:
            if goal is None:
                self.error(
                    fields["goal_within"],
                    "goal_within needs a goal",
                    hint="add 'goal: EVENT' (the event that counts as a conversion)",
                )
            goal_within = self.duration_field(fields["goal_within"]) or 0
        if "holdout" in fields:
            holdout = self.share(fields["holdout"], "holdout")
        self.experiments = {}
        if raw.steps is None:
            self.error(name, f"journey '{name.value}' has no steps", hint="add 'steps:'")
            return None
        steps, _, _ = self.block(raw.steps, root_scope)
        if not ok:
            return None
        line, col = name.position()
        journey = ir.Journey(
            name=name.value,
            trigger=trigger,
            steps=steps,
            origin=ir.Origin(name.source.path, line, col),
            description=fields["description"].value if "description" in fields else "",
            when=when,
            goal=goal,
            key=key,
            reentry=reentry,
            # sender and unsubscribe_url are customer settings (the lookup delivers them)
            message_class=message_class,
            when_capped=when_capped,
            also=triggers[1:],
            exit_when=exit_when,
            goal_within=goal_within,
            holdout=holdout,
        )
        journey.hash = journey.compute_hash()
        return journey

    def contact_fields(self, fields: dict[str, Text]) -> tuple[str, str]:
        """A journey's ``class`` and ``when_capped`` (CONTRACT.md §6)."""
        message_class, when_capped = "marketing", "wait"
        if "class" in fields:
            text = fields["class"]
            if text.value in ("marketing", "transactional"):
                message_class = text.value
            else:
                self.error(
                    text,
                    f"unknown message class '{text.value}'",
                    hint=did_you_mean(text.value, ("marketing", "transactional"))
                    or "use marketing (the default) or transactional",
                )
        if "when_capped" in fields:
            text = fields["when_capped"]
            if text.value not in ("wait", "skip"):
                self.error(
                    text,
                    f"unknown when_capped '{text.value}'",
                    hint="use wait (the default: send once the cap allows) or skip",
                )
            elif message_class == "transactional":
                self.error(
                    text,
                    "when_capped has no effect on a transactional journey",
                    hint="transactional email is never capped: remove when_capped, "
                    "or make the journey marketing",
                )
            else:
                when_capped = text.value
        return message_class, when_capped

    def trigger(self, text: Text) -> ir.Trigger | None:
        """One trigger (CONTRACT.md §7) → ``ir.Trigger``, or None after reporting why not."""
        try:
            node = parse_trigger(text.value)
        except TextError as e:
            words = text.value.split(None, 1)
            if not words or words[0] not in _TRIGGER_WORDS:
                self.event_name(text)  # an event name that is not one: say so, as ever
                return None
            hint = e.hint
            if hint is None:
                hint = (
                    "a trigger is an event name (order.placed), 'no EVENT for DURATION', "
                    "'every year on customer.FIELD [at HH:MM]', "
                    "'on customer.FIELD [- DURATION] [at HH:MM]' or 'entering EXPR'"
                )
            self.error(text, f"not a trigger: {e.message}", e.offset, hint)
            return None
        if node.kind == "event":
            return ir.Trigger(kind="event", event=node.event.text)
        if node.kind == "inactivity":
            seconds = self.duration(text, node.duration)
            if seconds is None:
                return None
            return ir.Trigger(kind="inactivity", event=node.event.text, seconds=seconds)
        if node.kind == "segment":
            expr = _Lowering(text, _Scope(frozenset()), self.problems, self.profile_types())
            lowered = expr.expr(node.expr)
            self.check_segment(text, node.expr)
            return ir.Trigger(kind="segment", src=lowered.src, expr=lowered.tree)
        # date
        names = node.path.names
        if names[0] != "customer" or len(names) < 2:
            self.error(
                text,
                "a date trigger reads a customer field",
                node.path.start,
                f"write e.g. 'on customer.{names[-1]}'",
            )
            return None
        path = ".".join(names[1:])
        declared = (self.schema.customer if self.schema else {}).get(names[1])
        if declared is None and self.schema is not None and self.schema.customer:
            self.error(
                text,
                f"unknown customer field '{names[1]}'",
                node.path.starts[1],
                did_you_mean(names[1], self.schema.customer)
                or "declare it under 'schema: customer:'",
            )
            return None
        if declared is not None and declared not in ("date", "datetime") and len(names) == 2:
            self.error(
                text,
                f"a date trigger needs a date or datetime field; customer.{names[1]} is "
                f"declared as {declared}",
                node.path.starts[1],
                f"declare it as date (YYYY-MM-DD{' or MM-DD' if node.yearly else ''}) or datetime",
            )
            return None
        at = ""
        if node.at is not None:
            m = TIME_RE.match(node.at.text)
            if m is None:
                self.error(
                    text,
                    f"'{node.at.text}' is not a time of day",
                    node.at.start,
                    "write HH:MM, from 00:00 to 23:59",
                )
                return None
            at = f"{int(m[1]):02d}:{m[2]}"
        seconds = 0
        if node.duration is not None:
            seconds = self.duration(text, node.duration)
            if seconds is None:
                return None
            seconds = -seconds if node.negative else seconds
        return ir.Trigger(kind="date", path=path, yearly=node.yearly, at=at, seconds=seconds)

    def check_segment(self, text: Text, node: ast.Node) -> None:
        """``entering`` reads the profile only: it is evaluated with no trigger or event."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Path) and n.names[0] != "customer":
                self.error(
                    text,
                    f"'entering' reads customer fields only, not '{n.names[0]}'",
                    n.start,
                    "write a condition over customer.*",
                )
                return
            for value in vars(n).values():
                if isinstance(value, ast.Node):
                    stack.append(value)
                elif isinstance(value, list):
                    stack.extend(v for v in value if isinstance(v, ast.Node))

    def profile_types(self) -> _Types | None:
        if self.schema is None or not self.schema.customer:
            return None
        return _Types(customer=self.schema.customer)

    def journey_types(self, triggers: list[ir.Trigger] | None) -> _Types | None:
        """What the journey's expressions may read: declared customer fields, and the
        trigger's fields when every trigger's data is known."""
        if self.schema is None:
            return None
        customer = self.schema.customer or None
        trigger_fields: dict[str, str] | None = None
        what = ""
        if triggers:
            merged: dict[str, str] = {}
            for t in triggers:
                if t.kind == "event":
                    declared = self.schema.events.get(t.event)
                    if declared is None:
                        merged = None
                        break
                    merged.update(declared)
                else:
                    merged.update(_TRIGGER_DATA[t.kind])
            trigger_fields = merged
            if len(triggers) == 1 and triggers[0].kind == "event":
                what = f"the event '{triggers[0].event}'"
            elif len(triggers) == 1:
                what = f"the trigger '{triggers[0]}'"
            else:
                what = "any of the journey's triggers"
        events = self.schema.events or None
        if customer is None and trigger_fields is None and events is None:
            return None
        return _Types(customer=customer, trigger=trigger_fields, trigger_what=what, events=events)

    def event_name(self, text: Text) -> str | None:
        try:
            return parse_event(text.value).text
        except TextError as e:
            self.error(
                text,
                f"'{text.value}' is not an event name",
                e.offset,
                "event names look like 'order.placed'",
            )
            return None

    def reentry(self, text: Text) -> ir.Reentry:
        try:
            policy = parse_reentry(text.value)
        except TextError:
            self.error(
                text,
                f"unknown reentry policy '{text.value}'",
                hint="use never, always or 'after DURATION' (e.g. after 30 days)",
            )
            return ir.Reentry()
        if policy.mode == "after":
            seconds = self.duration(text, policy.duration)
            return ir.Reentry("after", seconds or 0)
        return ir.Reentry(policy.mode)

    def expression(self, text: Text, scope: _Scope) -> ir.Expr | None:
        try:
            node = parse_expression_ast(text.value)
        except TextError as e:
            self.error(text, e.message, e.offset, e.hint)
            return None
        return _Lowering(text, scope, self.problems, self.types).expr(node)

    def duration_field(self, text: Text) -> int | None:
        """A key whose value is one duration (``goal_within: 14 days``)."""
        try:
            node = parse_duration(text.value)
        except TextError as e:
            self.error(text, e.message, e.offset, "write a duration, e.g. 14 days")
            return None
        return self.duration(text, node)

    def duration(self, text: Text, d: ast.Duration) -> int | None:
        factor = UNITS.get(d.unit)
        if factor is None:
            self.error(
                text,
                f"unknown time unit '{d.unit}'",
                d.unit_start - 0,
                did_you_mean(d.unit, UNITS) or "units: seconds, minutes, hours, days, weeks",
            )
            return None
        amount = float(d.amount)
        seconds = amount * factor
        if d.negative or seconds <= 0:
            self.error(text, "a duration must be longer than zero", d.start)
            return None
        if seconds > MAX_DURATION_SECONDS:
            self.error(
                text,
                "a duration must be at most 1826 days (5 years)",
                d.start,
                "for a yearly rhythm, end the journey and let it start again (reentry)",
            )
            return None
        if not math.isclose(seconds, round(seconds)):
            self.error(text, "a duration must be a whole number of seconds", d.start)
            return None
        return int(round(seconds))

    # ---- steps
    def block(self, raws: list[RawStep], scope: _Scope) -> tuple[list[ir.Step], _Scope, bool]:
        """Steps of one list → IR steps, the scope after them, whether they always end."""
        out: list[ir.Step] = []
        ended = False
        for raw in raws:
            text = raw.text if isinstance(raw, LineStep) else raw.header
            if ended:
                self.error(
                    text,
                    "unreachable step: the journey has already ended",
                    hint="remove it, or move the 'exit'",
                )
                ended = False  # report once per list, keep checking the rest
            step, scope, ends = self.step(raw, scope)
            if step is not None:
                out.append(step)
            ended = ended or ends
        return out, scope, ended

    def step(self, raw: RawStep, scope: _Scope) -> tuple[ir.Step | None, _Scope, bool]:
        text = raw.text if isinstance(raw, LineStep) else raw.header
        try:
            node = parse_step(text.value)
        except TextError as e:
            self.error(text, e.message, e.offset, e.hint)
            # Still check the block's steps, in a scope that cannot be known here.
            for branch in _branches(raw):
                self.block(branch, scope)
            return None, scope, False
        line, col = text.position(0)
        origin = ir.Origin(text.source.path, line, col)
        if isinstance(raw, IfBlock) and not isinstance(node, ast.IfStep):
            self.error(text, "this block needs an 'if EXPR' header")
            return None, scope, False
        if isinstance(raw, SplitBlock) != isinstance(node, ast.SplitStep):
            if isinstance(raw, SplitBlock):
                self.error(text, "this block needs a 'split NAME' header")
            else:
                self.error(
                    text,
                    "a 'split' step needs a block",
                    hint="end the line with ':' and list one 'VARIANT N%:' block below it "
                    "per variant",
                )
            for branch in _branches(raw):
                self.block(branch, scope)
            return None, scope, False
        if isinstance(raw, WaitForBlock) and not isinstance(node, ast.WaitForStep):
            self.error(
                text,
                "only 'wait for EVENT within DURATION' opens a block",
                hint="for a plain delay write '- wait 2 days' without ':'",
            )
            return None, scope, False
        low = _Lowering(text, scope, self.problems, self.types)

        if isinstance(node, ast.IfStep):
            if not isinstance(raw, IfBlock):
                self.error(
                    text,
                    "an 'if' step needs a block",
                    hint="end the line with ':' and list the steps below it, indented",
                )
                return None, scope, False
            cond = low.expr(node.cond)
            then, then_scope, then_ends = self.block(raw.then, scope)
            branches = [(then_scope, then_ends)]
            # `else if EXPR:` keys: each an If nested in the else branch of the one before
            chain: list[tuple[ir.If, bool]] = []
            for key, steps in raw.elifs:
                elif_cond = self.else_if(key, scope)
                body, body_scope, body_ends = self.block(steps, scope)
                branches.append((body_scope, body_ends))
                line, col = key.position(0)
                elif_origin = ir.Origin(key.source.path, line, col)
                chain.append(
                    (
                        ir.If(elif_origin, elif_cond or ir.Expr("false", ["lit", False]), body),
                        body_ends,
                    )
                )
            else_, else_scope, else_ends = self.block(raw.else_ or [], scope)
            branches.append((else_scope, else_ends))
            after = _join(scope, branches)
            ends = all(e for _, e in branches) and raw.else_ is not None
            for step, _ in reversed(chain):
                step.else_ = else_
                else_ = [step]
            return ir.If(origin, cond, then, else_), after, ends

        if isinstance(node, ast.SplitStep):
            return self.split(text, node, raw, origin, scope)

        if isinstance(node, ast.WaitForStep):
            seconds = None
            if node.within is None:
                self.error(
                    text,
                    "wait for needs 'within DURATION'",
                    node.end,
                    "e.g. wait for order.placed within 3 days",
                )
            else:
                seconds = self.duration(text, node.within)
            where = None
            if node.where is not None:
                waited = scope.with_event(node.event.text)
                where = _Lowering(text, waited, self.problems, self.types).expr(node.where)
            received_raw = raw.received if isinstance(raw, WaitForBlock) else None
            timeout_raw = raw.timeout if isinstance(raw, WaitForBlock) else None
            received, r_scope, r_ends = self.block(
                received_raw or [], scope.with_event(node.event.text)
            )
            timeout, t_scope, t_ends = self.block(timeout_raw or [], scope)
            after = _join(scope, [(r_scope.with_event(scope.event), r_ends), (t_scope, t_ends)])
            ends = r_ends and t_ends
            step = ir.WaitFor(origin, node.event.text, seconds or 0, where, received, timeout)
            return step, after, ends

        if isinstance(node, ast.SendStep):
            self.template(text, node.template)
            args = self.kwargs(text, node.args, low)
            self.template_scope(text, node, scope, args)
            return ir.Send(origin, node.template.text, args), scope, False

        if isinstance(node, ast.NotifyStep):
            address = self.settings.teams.get(node.team.text)
            if address is None:
                hint = did_you_mean(node.team.text, self.settings.teams)
                if not self.settings.teams:
                    hint = "define teams under 'settings: teams:'"
                self.error(text, f"unknown team '{node.team.text}'", node.team.start, hint)
            self.template(text, node.template)
            args = self.kwargs(text, node.args, low)
            self.template_scope(text, node, scope, args)
            step = ir.Notify(origin, node.team.text, address or "", node.template.text, args)
            return step, scope, False

        if isinstance(node, ast.WaitStep):
            seconds = self.duration(text, node.duration)
            return ir.Wait(origin, seconds or 0), scope, False

        if isinstance(node, ast.CallStep):
            return self.call(text, node, low, origin, scope)

        if isinstance(node, ast.SetStep):
            return self.set_step(text, node, low, origin, scope)

        if isinstance(node, ast.ExitStep):
            return ir.Exit(origin), scope, True

        if isinstance(node, ast.WaitUntilStep):
            return self.wait_until(text, node, low, origin), scope, False
        raise TypeError(f"unknown step node {node!r}")

    def split(self, text: Text, node: ast.SplitStep, raw: SplitBlock, origin, scope: _Scope):
        """``split NAME:`` (CONTRACT.md §8): named variants whose shares sum to 100 %, an
        experiment name used once per journey."""
        name = node.name.text
        if name in self.experiments:
            first = self.experiments[name]
            self.error(
                text,
                f"experiment '{name}' is already split at line {first}",
                node.name.start,
                "give each split of a journey its own name",
            )
        else:
            self.experiments[name] = text.position(0)[0]
        variants: list[ir.Variant] = []
        branches: list[tuple[_Scope, bool]] = []
        total, seen, ok = 0, {}, True
        for key, steps in raw.variants:
            body, body_scope, body_ends = self.block(steps, scope)
            branches.append((body_scope, body_ends))
            weight = self.variant_key(key)
            if weight is None:
                ok = False
                continue
            vname, share = weight
            if vname in seen:
                self.error(key, f"variant '{vname}' is listed twice", hint="name each variant once")
                ok = False
                continue
            seen[vname] = key
            total += share
            variants.append(ir.Variant(vname, share, body))
        if not raw.variants:
            self.error(
                text,
                f"split '{name}' has no variants",
                hint="list one 'VARIANT N%:' block per variant, e.g. 'control 50%:'",
            )
        elif ok and len(variants) < 2:
            self.error(
                text,
                f"split '{name}' has one variant; a split needs at least two",
                hint="add another variant, e.g. 'control 50%:'",
            )
        elif ok and total != BASIS:
            self.error(
                text,
                f"the variants of split '{name}' add up to {_percent(total)}, not 100%",
                node.name.start,
                "make the shares sum to 100%",
            )
        after = _join(scope, branches)
        ends = bool(branches) and all(e for _, e in branches)
        return ir.Split(origin, name, variants), after, ends

    def variant_key(self, key: Text) -> tuple[str, int] | None:
        """A variant key ``NAME N%`` → (name, basis points), or None (reported)."""
        try:
            node = parse_variant(key.value)
        except TextError as e:
            self.error(
                key, e.message, e.offset, "write each variant as 'NAME N%:', e.g. 'control 50%:'"
            )
            return None
        share = self.percent(key, node.percent)
        return None if share is None else (node.name.text, share)

    def percent(self, text: Text, node: ast.Percent) -> int | None:
        """A percentage (at most two decimals, 0 to 100) in basis points, or None."""
        value = float(node.value)
        points = round(value * 100)
        if not math.isclose(points, value * 100, abs_tol=1e-6):
            self.error(text, f"{node.value}% has more than two decimals", node.start, "e.g. 12.5%")
            return None
        if points > BASIS:
            self.error(text, f"{node.value}% is more than 100%", node.start)
            return None
        return points

    def share(self, text: Text, what: str) -> int:
        """A journey's ``holdout: P%`` in basis points (reported and 0 when wrong)."""
        try:
            node = parse_percent(text.value)
        except TextError as e:
            self.error(text, e.message, e.offset, f"write {what} as a percentage, e.g. 10%")
            return 0
        points = self.percent(text, node)
        if points is not None and points >= BASIS:
            self.error(text, f"a {what} of 100% sends nothing to anyone", node.start, "e.g. 10%")
            return 0
        return points or 0

    def wait_until(self, text: Text, node, low: _Lowering, origin) -> ir.WaitUntil:
        """``wait until HH:MM`` (a valid time of day) or ``wait until EXPR``."""
        if node.time is not None:
            try:
                minutes = parse_time_of_day(node.time, node.time_start)
            except ContactTextError as e:
                self.error(text, e.message, e.offset, e.hint)
                minutes = 0
            return ir.WaitUntil(origin, minutes=minutes)
        tree, kind = low.lower(node.at)
        if kind in ("number", "bool", "list"):
            self.error(
                text,
                f"wait until needs a time, not {_type_word(kind)}",
                node.at.start,
                "give an ISO 8601 time (e.g. customer.renewal_at), or HH:MM for a time of day",
            )
        return ir.WaitUntil(origin, at=ir.Expr(text.value[node.at.start : node.at.end], tree))

    def else_if(self, key: Text, scope: _Scope) -> ir.Expr | None:
        """The condition of an ``else if EXPR`` key (offsets stay those of the key)."""
        blanked = " " * len(ELSE_IF) + key.value[len(ELSE_IF) :]
        try:
            node = parse_expression_ast(blanked)
        except TextError as e:
            self.error(key, e.message, e.offset, e.hint)
            return None
        return _Lowering(key, scope, self.problems, self.types).expr(node)

    def kwargs(self, text: Text, args: list[ast.Kwarg], low: _Lowering) -> dict[str, ir.Expr]:
        out: dict[str, ir.Expr] = {}
        for arg in args:
            if arg.name in out:
                self.error(text, f"argument '{arg.name}' is given twice", arg.start)
                continue
            out[arg.name] = low.expr(arg.value)
        return out

    def call(self, text, node: ast.CallStep, low: _Lowering, origin, scope: _Scope):
        name = node.activity.text
        spec = self.activities.get(name)
        args: dict[str, ir.Expr] = {}
        types: dict[str, tuple[str, ast.Kwarg]] = {}
        for arg in node.args:
            if arg.name in args:
                self.error(text, f"argument '{arg.name}' is given twice", arg.start)
                continue
            tree, t = low.lower(arg.value)
            args[arg.name] = ir.Expr(text.value[arg.value.start : arg.value.end], tree)
            types[arg.name] = (t, arg)
        if spec is None:
            self.error(
                text,
                f"unknown activity '{name}'",
                node.activity.start,
                did_you_mean(name, self.activities)
                or (
                    "activities: " + ", ".join(sorted(self.activities))
                    if self.activities
                    else "no activities are registered"
                ),
            )
        else:
            for arg_name, (t, arg) in types.items():
                param = spec.params.get(arg_name)
                if param is None:
                    self.error(
                        text,
                        f"{name}() has no argument '{arg_name}'",
                        arg.start,
                        did_you_mean(arg_name, spec.params)
                        or "arguments: " + ", ".join(spec.params),
                    )
                elif not _fits(t, param.type):
                    self.error(
                        text,
                        f"argument '{arg_name}' of {name}() must be {_type_word(param.type)}, "
                        f"not {_type_word(t)}",
                        arg.value.start,
                    )
            missing = [p for p, spec_p in spec.params.items() if spec_p.required and p not in args]
            if missing:
                self.error(
                    text,
                    f"{name}() is missing "
                    + ("argument " if len(missing) == 1 else "arguments ")
                    + ", ".join(f"'{m}'" for m in missing),
                    node.activity.start,
                )
        bind = None
        if node.bind is not None:
            bind = node.bind.text
            if self.reserved(text, bind, node.bind.start):
                scope = scope.bind(bind)
        step = ir.Call(
            origin,
            name,
            args,
            bind,
            spec.timeout_seconds if spec else 60,
            spec.max_attempts if spec else 0,
            spec.schedule_to_close_seconds if spec else 3600,
        )
        return step, scope, False

    def reserved(self, text: Text, name: str, offset: int) -> bool:
        if name in ROOTS:
            self.error(text, f"'{name}' is a reserved name", offset, "choose another name")
            return False
        return True

    def set_step(self, text, node: ast.SetStep, low: _Lowering, origin, scope: _Scope):
        names = node.target.names
        value = low.expr(node.value)
        if names[0] == "customer":
            if len(names) != 2:
                self.error(
                    text,
                    "set changes one profile field: set customer.FIELD = EXPR",
                    node.target.start,
                )
                return None, scope, False
            if self.types is not None and self.types.customer is not None:
                problem, _, hint = self.types.check("customer", names[1:])
                if problem is not None:
                    self.error(text, problem, node.target.starts[1], hint)
            return ir.Set(origin, "customer", names[1], value), scope, False
        if names[0] in ("trigger", "event"):
            self.error(
                text,
                f"'{names[0]}' is read-only",
                node.target.start,
                "set customer.FIELD or a journey variable",
            )
            return None, scope, False
        if len(names) != 1:
            self.error(
                text,
                "set a whole journey variable: set NAME = EXPR",
                node.target.starts[1] - 1,
            )
            return None, scope, False
        return ir.Set(origin, "var", names[0], value), scope.bind(names[0]), False

    # ---- templates
    def template(self, text: Text, name: ast.Name) -> None:
        if name.text in self.template_ok:
            if self.template_ok[name.text] is None:
                self.unknown_template(text, name)
            return
        path = self.templates_dir / template_file(name.text)
        if template_file(name.text) not in self.template_set.sources:
            self.template_ok[name.text] = None
            self.unknown_template(text, name)
            return
        self.template_ok[name.text] = self.compile_template(path, template_file(name.text), text)

    def template_scope(self, text: Text, node, scope: _Scope, args: dict) -> None:
        """Every name the template needs is one this step provides (CONTRACT.md §3)."""
        name = node.template
        if self.template_ok.get(name.text) is not True:
            return  # unknown or broken: reported already
        if self._needs is None:
            self._needs = TemplateNeeds(self._env)
        file = template_file(name.text)
        available = _TEMPLATE_NAMES | scope.vars | args.keys()
        if scope.event:
            available = available | {"event"}
        head = f"send {name.text}"
        if isinstance(node, ast.NotifyStep):
            head = f"notify {node.team.text} with {name.text}"
        missing = False
        for var, need in sorted(self._needs.of(file).items()):
            if var in available:
                continue
            missing = True
            where = "" if need.origin == file else f" (in {need.origin})"
            if need.hint is not None:
                hint = need.hint
            elif var == "event":
                hint = "'event' exists only in a wait for's received: branch"
            else:
                given = ", ".join(f"{a}=..." for a in [*args, var])
                hint = f"add it: {head} with {given}"
            self.error(
                text,
                f"template '{name.text}' uses '{var}'{where}, which this step does not provide",
                name.start,
                hint,
            )
        if not missing:
            self.render_checks.setdefault((file, frozenset(available)), text)
        if self.types is not None:
            trigger = self.types.trigger
            key = (file, tuple(sorted(trigger.items())) if trigger is not None else None)
            self.field_checks.setdefault((*key, self.types.trigger_what), text)

    def render_samples(self) -> None:
        """Render each template once per set of names its steps provide, with sample
        values, with the renderer (the engine's render pool, under the send-time limits), and
        report what would fail for every customer: a layout or include that does not
        compile, the sandbox refusing an operation, or a time or memory limit. Other render
        errors depend on real data and are left out."""
        if not self.render_checks or self.renderer is None:
            return
        pool = self.renderer
        jobs = []
        for (file, names), text in sorted(self.render_checks.items(), key=lambda i: i[0][0]):
            sample = sorted(names - {"unsubscribe_url"})
            variables = {"unsubscribe_url": "https://example.invalid/u/sample"}
            jobs.append((file, text, pool.submit(self.template_set, file, variables, sample)))
        seen = set()
        for file, text, handle in jobs:
            try:
                pool.result(handle)
                continue
            except TemplateRenderError as e:
                if e.reason not in ("syntax", "security", "limit"):
                    continue
                err = e
            where = err.template or file
            line = err.line or 1
            if (where, line, err.message) in seen:
                continue
            seen.add((where, line, err.message))
            lines = self.template_set.sources.get(where, "").splitlines()
            source_line = lines[line - 1] if err.line and 0 < line <= len(lines) else None
            ref_line, ref_col = text.position()
            used_by = f"used by {text.source.path}:{ref_line}:{ref_col}"
            if err.reason == "syntax":
                message, hint = f"template syntax error: {err.message}", used_by
            elif err.reason == "security":
                message = f"template refused by the sandbox: {err.message}"
                hint = f"{used_by}; a template can only use the data it is given, within limits"
            else:
                message = f"template over a render limit: {err.message}"
                hint = f"{used_by}; make the template lighter (it would fail for every customer)"
            self.problems.append(
                RulesError(str(self.templates_dir / where), line, 1, message, hint, source_line)
            )

    def check_template_fields(self) -> None:
        """With a schema: every customer.NAME / trigger.NAME a sent template reads is
        declared (for trigger.*, by the event that starts the journey)."""
        if not self.field_checks or self._env is None:
            return
        from dsl.template_fields import field_uses

        seen: set[tuple] = set()
        for (file, trigger, what), text in self.field_checks.items():
            types = _Types(
                customer=self.schema.customer or None if self.schema else None,
                trigger=dict(trigger) if trigger is not None else None,
                trigger_what=what,
            )
            ref_line, ref_col = text.position()
            used_by = f"used by {text.source.path}:{ref_line}:{ref_col}"
            for use in field_uses(self._env, file):
                problem, _, hint = types.check(use.root, [use.name])
                if problem is None or (use.file, problem) in seen:
                    continue  # the first use in each file is enough to find the others
                seen.add((use.file, problem))
                lines = self.template_set.sources.get(use.file, "").splitlines()
                line_text = lines[use.line - 1] if 0 < use.line <= len(lines) else None
                col = 1
                if line_text is not None:
                    found = line_text.find(f"{use.root}.{use.name}")
                    col = found + 1 if found >= 0 else 1
                hint = f"{hint}; {used_by}" if hint else used_by
                self.problems.append(
                    RulesError(
                        str(self.templates_dir / use.file), use.line, col, problem, hint, line_text
                    )
                )

    def unknown_template(self, text: Text, name: ast.Name) -> None:
        if self._available is None:
            self._available = available_templates(self.template_set)
        hint = did_you_mean(name.text, self._available)
        if hint is None:
            hint = f"create {self.templates_dir / (name.text + '.html.j2')}"
        self.error(text, f"unknown template '{name.text}'", name.start, hint)

    def compile_template(self, path: Path, file: str, used_by: Text) -> bool:
        import jinja2

        if self._env is None:
            self._env = make_environment(self.template_set)
        try:
            self._env.get_template(file)
            return True
        except jinja2.TemplateSyntaxError as e:
            line = e.lineno or 1
            where = path
            if e.name and e.name != file:
                where = self.templates_dir / e.name
            rel = e.name if e.name else file
            lines = self.template_set.sources.get(rel, "").splitlines()
            source_line = lines[line - 1] if 0 < line <= len(lines) else None
            ref_line, ref_col = used_by.position()
            self.problems.append(
                RulesError(
                    str(where),
                    line,
                    1,
                    f"template syntax error: {e.message}",
                    f"used by {used_by.source.path}:{ref_line}:{ref_col}",
                    source_line,
                )
            )
        except (jinja2.TemplateError, OSError, UnicodeDecodeError) as e:
            self.problems.append(RulesError(str(path), 1, 1, f"cannot load template: {e}"))
        return False


# Names every send / notify gives its template (``event`` only in a received branch).
_TEMPLATE_NAMES = frozenset({"customer", "trigger", "unsubscribe_url"})


def _branches(raw: RawStep) -> list[list[RawStep]]:
    if isinstance(raw, IfBlock):
        return [raw.then, *(steps for _, steps in raw.elifs), raw.else_ or []]
    if isinstance(raw, WaitForBlock):
        return [raw.received or [], raw.timeout or []]
    if isinstance(raw, SplitBlock):
        return [steps for _, steps in raw.variants]
    return []


def _percent(points: int) -> str:
    return f"{points / 100:g}%"


def _join(before: _Scope, branches: list[tuple[_Scope, bool]]) -> _Scope:
    """Variables bound on every branch that goes on (a branch that ends binds nothing)."""
    live = [s.vars for s, ends in branches if not ends]
    if not live:
        return before
    common = live[0]
    for v in live[1:]:
        common = common & v
    return _Scope(common, before.event, before.open_vars)


def _zone_names() -> set[str]:
    import zoneinfo

    return zoneinfo.available_timezones()
