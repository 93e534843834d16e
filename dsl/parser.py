"""The Lark front end: one step line, expression, duration, event name or reentry policy.

In: the text of one YAML scalar (``send welcome with discount=10``, ``customer.age > 18``).
Out: a ``dsl.ast`` node whose spans are offsets inside that text, or a ``TextError`` with
the offset of the problem and a message that says how to fix it. Lark's exceptions never
escape: every syntax error is classified in ``_syntax_error``, by the table ``SYNTAX_CLASSES``
(each class with example inputs, tested).

Limits keep hostile input cheap: a text longer than ``MAX_TEXT`` characters is refused before
parsing, and a tree nested deeper than ``MAX_DEPTH`` while it is being built (the AST is
built by the LALR reductions, which are iterative, so deep input never recurses).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dsl import ast
from dsl.errors import TextError, did_you_mean

MAX_TEXT = 10_000  # characters in one step line or expression
MAX_DEPTH = 100  # nesting of the parse tree (parentheses, not, operators)

STEP_KEYWORDS = ("send", "notify", "wait", "if", "call", "set", "exit", "split")
_GRAMMAR_FILE = Path(__file__).with_name("grammar.lark")
_DESCRIBE = {
    "NAME": "a name",
    "WORD": "a name",
    "EVENT": "an event name",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "STRING": "a string",
    "CLOCK_TIME": "a time of day (HH:MM)",
    "COMP_OP": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "$END": "the end",
    "UNTIL": "'until'",
    "TIME_OF_DAY": "a time of day",
    "PERCENT": "'%'",
}
_STR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_PREV_TOKEN = re.compile(r"(==|!=|<=|>=|[A-Za-z0-9_.\-]+|\S)\s*$")


@functools.cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR_FILE.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        start=[
            "step",
            "expression",
            "duration",
            "event",
            "reentry",
            "trigger",
            "variant",
            "percent",
        ],
        maybe_placeholders=True,
        # The AST is built by the LALR reductions themselves: no parse tree, no second
        # pass, and no recursion however deep the input is nested.
        transformer=_Build(),
    )


# --------------------------------------------------------------------------- public API


def parse_step(text: str) -> ast.StepNode:
    """One step line or block header (``if EXPR`` / ``wait for ...``)."""
    return _parse(text, "step")


def parse_expression(text: str) -> ast.Node:
    return _parse(text, "expression")


def parse_duration(text: str) -> ast.Duration:
    return _parse(text, "duration")


def parse_event(text: str) -> ast.Name:
    return _parse(text, "event")


def parse_reentry(text: str) -> ast.ReentryPolicy:
    return _parse(text, "reentry")


def parse_variant(text: str) -> ast.Variant:
    """A ``split`` block's branch key: ``control 50%`` (CONTRACT.md §8)."""
    return _parse(text, "variant")


def parse_percent(text: str) -> ast.Percent:
    """A share: ``10%`` (``holdout:``)."""
    return _parse(text, "percent")


def parse_trigger(text: str) -> ast.TriggerNode:
    """One trigger: an event name, ``no EVENT for DURATION``, ``every year on PATH [at
    HH:MM]``, ``on PATH [+|- DURATION] [at HH:MM]`` or ``entering EXPR``."""
    return _parse(text, "trigger")


# Step lines repeat a lot across journeys ("exit", "wait 2 days"); the AST is never
# mutated after it is built, so identical texts can share one.
@functools.lru_cache(maxsize=8192)
def _parse(text: str, start: str):
    if len(text) > MAX_TEXT:
        raise TextError(
            MAX_TEXT,
            f"too long: {len(text):,} characters (the limit is {MAX_TEXT:,})",
            "split the logic into several steps or variables",
        )
    if not text.strip():
        raise TextError(0, f"empty {_WHAT[start]}")
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, start) from None


_WHAT = {
    "step": "step",
    "expression": "expression",
    "duration": "duration",
    "event": "event name",
    "reentry": "reentry policy",
    "trigger": "trigger",
    "variant": "variant",
    "percent": "percentage",
}


# --------------------------------------------------------------------------- syntax errors
#
# Every syntax error is one of the classes below, tried in order; the first whose
# conditions hold names the problem. Each class carries bad inputs that must land in it:
# tests/dsl/test_syntax_classes.py parses every example and fails when one lands in
# another class (a grammar change that moves what the parser expects where), and checks
# that every terminal named here exists in the grammar (a renamed terminal).


@dataclass(frozen=True)
class SyntaxClass:
    """One kind of syntax error: when it applies, what it says, and inputs that show it.

    It applies when each condition given holds (one left empty always holds):
    ``found``: the unexpected terminal is one of these (``$END``: the text ended);
    ``expects_any`` / ``expects_all`` / ``expects_only``: the terminals the parser would
    have taken there; ``at_start``: nothing comes before the problem; ``at_end``: the text
    ended (True) or not (False); ``after``: the word before the problem; ``first_word``:
    the text's first word; ``start``: the kind of text; ``glued``: the text right before
    the problem ends with this, no space between.

    ``message`` (``message_at_end`` when the text ended, if given) and ``hint`` are
    ``str.format`` templates over ``found`` (``'x'`` or ``the end``), ``word`` (the
    unexpected text), ``prev`` (the word before), ``after`` (`` after 'prev'`` or
    nothing), ``what`` (``step``, ``expression``, ...) and ``expected`` (what the parser
    would have taken, in words). ``suggest``: a did-you-mean over these words replaces
    the hint when one is close. ``shift`` moves the reported position. ``examples``: ``"START: TEXT"``.
    """

    label: str
    message: str
    hint: str | None = None
    examples: tuple[str, ...] = ()
    message_at_end: str | None = None
    found: frozenset[str] = frozenset()
    expects_any: frozenset[str] = frozenset()
    expects_all: frozenset[str] = frozenset()
    expects_only: frozenset[str] | None = None
    at_start: bool | None = None
    at_end: bool | None = None
    after: tuple[str, ...] = ()
    first_word: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    glued: str | None = None
    suggest: tuple[str, ...] = ()
    shift: int = 0

    def applies(self, s: _Situation) -> bool:
        return (
            (not self.found or s.token in self.found)
            and (not self.expects_any or bool(self.expects_any & s.expected))
            and self.expects_all <= s.expected
            and (self.expects_only is None or self.expects_only == s.expected)
            and (self.at_start is None or self.at_start == (s.prev is None))
            and (self.at_end is None or self.at_end == s.at_end)
            and (not self.after or s.prev in self.after)
            and (not self.first_word or s.first_word in self.first_word)
            and (not self.start or s.start in self.start)
            and (self.glued is None or s.before.endswith(self.glued))
        )


@dataclass(frozen=True)
class _Situation:
    """What the parser saw where it stopped."""

    start: str  # which kind of text
    token: str  # the unexpected terminal ("$END" at the end)
    word: str  # its text
    expected: frozenset[str]  # the terminals the parser would have taken
    pos: int  # offset of the problem
    before: str  # the text before it
    prev: str | None  # the word before it
    first_word: str

    @property
    def at_end(self) -> bool:
        return self.token == "$END"


def _set(*names: str) -> frozenset[str]:
    return frozenset(names)


SYNTAX_CLASSES: tuple[SyntaxClass, ...] = (
    SyntaxClass(
        "unknown-step",
        "unknown step '{word}'",
        "a step starts with send, notify, wait, if, call, set, exit or split",
        ("step: sned welcome", "step: wiat 2 days", "step: 42", "step: (x)"),
        start=("step",),
        at_start=True,
        suggest=STEP_KEYWORDS,
    ),
    SyntaxClass(
        "assign-in-condition",
        "'=' is not a comparison",
        "use '==' to compare values",
        (
            "step: if customer.plan = 'pro'",
            "expression: customer.age = 18",
            "step: if (x + 1) = 2",
            "step: wait for a.b where event.id = trigger.id within 1 day",
        ),
        found=_set("EQUAL"),
        expects_any=_set("COMP_OP", "AND"),
    ),
    SyntaxClass(
        "double-equals",
        "unexpected '=='",
        "use a single '=' to give a value",
        ("step: send welcome with discount==10", "step: set x == 1"),
        found=_set("EQUAL"),
        glued="=",
        shift=-1,
    ),
    SyntaxClass(
        "chained-comparison",
        "comparisons cannot be chained",
        "write 'a < b and b < c' instead of 'a < b < c'",
        ("step: if 1 < x < 5", "expression: a == b == c"),
        found=_set("COMP_OP"),
        expects_any=_set("AND"),
    ),
    SyntaxClass(
        "expression-expected",
        "expected an expression{after}, found {found}",
        message_at_end="expected an expression{after}",
        examples=(
            "step: if customer.orders_count ==",
            "step: if",
            "step: set x = )",
            "step: send welcome with discount=",
            "step: call f(a=1, b=",
            "expression: (",
            "expression: x and",
            "expression: [1,",
            "expression: len(x,",
            "expression: not",
            "expression: x in",
            "step: wait for a.b where",
        ),
        expects_all=_set("NAME", "NUMBER"),
    ),
    SyntaxClass(
        "unit-expected",
        "expected a unit after '{prev}', found {found}",
        "write e.g. '2 days' or '2d'; units: seconds, minutes, hours, days, weeks",
        ("step: wait 2", "step: wait 2 ,", "reentry: after 3", "duration: -1"),
        expects_any=_set("UNIT"),
    ),
    SyntaxClass(
        "wait-duration-expected",
        "expected a duration after '{prev}', found {found}",
        "write 'wait 2 days', or 'wait for EVENT within DURATION'",
        ("step: wait", "step: wait soon"),
        expects_all=_set("NUMBER", "MINUS"),
        after=("wait",),
    ),
    SyntaxClass(
        "duration-expected",
        "expected a duration after '{prev}', found {found}",
        "write e.g. '2 days' or '36h'",
        ("step: wait for a.b within", "step: wait for a.b within soon", "reentry: after"),
        expects_all=_set("NUMBER", "MINUS"),
    ),
    SyntaxClass(
        "event-expected",
        "expected an event name after '{prev}', found {found}",
        "event names look like 'order.placed'",
        ("step: wait for", "step: wait for 5 within 1 day"),
        expects_any=_set("EVENT"),
    ),
    SyntaxClass(
        "team-expected",
        "expected a team name after '{prev}', found {found}",
        examples=("step: notify", "step: notify , with alert"),
        expects_any=_set("WORD"),
        after=("notify",),
    ),
    SyntaxClass(
        "experiment-expected",
        "expected an experiment name after '{prev}', found {found}",
        "write: split NAME: with one 'VARIANT N%:' block per variant below it",
        examples=("step: split", "step: split ,"),
        expects_any=_set("WORD"),
        after=("split",),
    ),
    SyntaxClass(
        "template-expected",
        "expected a template name after '{prev}', found {found}",
        examples=("step: send", "step: send ,", "step: notify support with"),
        expects_any=_set("WORD"),
    ),
    SyntaxClass(
        "notify-needs-with",
        "notify needs 'with TEMPLATE'",
        "write: notify TEAM with TEMPLATE [with NAME=EXPR]",
        ("step: notify support alert", "step: notify support"),
        expects_only=_set("WITH"),
    ),
    SyntaxClass(
        "missing-rpar",
        "missing ')'",
        examples=("step: if (x", "step: call f(a=1", "expression: len(x", "expression: (1 + 2"),
        expects_any=_set("RPAR"),
        at_end=True,
    ),
    SyntaxClass(
        "missing-rsqb",
        "missing ']'",
        examples=("expression: [1, 2", "step: if x in [1"),
        expects_any=_set("RSQB"),
        at_end=True,
    ),
    SyntaxClass(
        "call-needs-parens",
        "expected '(' after '{prev}', found {found}",
        "write: call ACTIVITY(NAME=EXPR, ...) [as NAME]",
        ("step: call create_ticket", "step: call create_ticket priority=1"),
        expects_only=_set("LPAR"),
        start=("step",),
        first_word=("call",),
    ),
    SyntaxClass(
        "arguments-need-commas",
        "unexpected {found} after '{prev}'",
        "separate arguments with ','",
        ("step: send welcome with a=1 b=2", "step: call f(a=1 b=2)"),
        expects_any=_set("AND", "COMP_OP"),
        expects_all=_set("COMMA"),
        at_end=False,
        first_word=("send", "notify", "call"),
    ),
    SyntaxClass(
        "unexpected-after-operand",
        "unexpected {found} after '{prev}'",
        "join conditions with 'and' or 'or'",
        ("step: if x y", "expression: a b", "step: if (a) 1", "step: set x = 1 2"),
        expects_any=_set("AND", "COMP_OP"),
        at_end=False,
    ),
    SyntaxClass(
        "after-the-end",
        "unexpected {found} after the end of the {what}",
        examples=(
            "step: exit now",
            "duration: 2 days x",
            "reentry: never x",
            "event: order.placed x",
            "event: order.placed within",
        ),
        expects_only=_set("$END"),
        at_end=False,
    ),
    SyntaxClass(
        "unexpected-end",
        "unexpected end of the {what}; expected {expected}",
        examples=("step: set x", "step: call f(a"),
        at_end=True,
    ),
    SyntaxClass(
        "unexpected",
        "unexpected {found}; expected {expected}",
        examples=("step: set x 1", "step: call f(1)"),
    ),
)

_BAD_CHARACTERS = {
    '"': ("unterminated string", 'close it with "'),
    "'": ("unterminated string", "close it with '"),
    "&": ("unexpected character '&'", "use 'and'"),
    "|": ("unexpected character '|'", "use 'or'"),
    "!": ("unexpected character '!'", "use 'not', or '!=' to compare"),
    ":": (
        "unexpected character ':'",
        "only a block step ('if ...:', 'wait for ...:') ends with ':'",
    ),
}


def _syntax_error(e: UnexpectedInput, text: str, start: str) -> TextError:
    """Turn any Lark error into a message that says what to write instead."""
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream
        message, hint = _BAD_CHARACTERS.get(
            text[pos], (f"unexpected character {text[pos]!r}", None)
        )
        return TextError(pos, message, hint)
    if not isinstance(e, UnexpectedToken):  # UnexpectedEOF and future kinds
        return TextError(len(text.rstrip()), f"unexpected end of the {_WHAT[start]}")
    s = _situation(e, text, start)
    cls = syntax_class(s)
    fields = {
        "found": "the end" if s.at_end else f"'{s.word}'",
        "word": s.word,
        "prev": s.prev,
        "after": f" after '{s.prev}'" if s.prev else "",
        "what": _WHAT[start],
        "expected": _describe(s.expected),
    }
    template = cls.message_at_end if (s.at_end and cls.message_at_end) else cls.message
    hint = cls.hint.format(**fields) if cls.hint else None
    if cls.suggest:
        hint = did_you_mean(s.word, cls.suggest) or hint
    return TextError(s.pos + cls.shift, template.format(**fields), hint)


def _situation(e: UnexpectedToken, text: str, start: str) -> _Situation:
    tok = e.token
    at_end = tok.type == "$END"
    pos = len(text.rstrip()) if at_end else tok.start_pos
    prev_match = _PREV_TOKEN.search(text[:pos])
    # What this parse would take here (``accepts`` follows the reductions of this very
    # stack; ``expected`` is the state's, merged across contexts by LALR). Nothing at
    # all: the text was complete.
    expected = e.accepts if e.accepts is not None else e.expected
    words = text.split(None, 1)
    return _Situation(
        start=start,
        token=tok.type,
        word=str(tok.value),
        expected=frozenset(expected) or frozenset({"$END"}),
        pos=pos,
        before=text[:pos],
        prev=prev_match.group(1) if prev_match else None,
        first_word=words[0] if words else "",
    )


def syntax_class(s: _Situation) -> SyntaxClass:
    """The first class that applies (the last one always does)."""
    return next(c for c in SYNTAX_CLASSES if c.applies(s))


def classify(text: str, start: str = "step") -> str | None:
    """The label of the syntax error ``text`` gives (None: it parses, or the error is a
    bad character); for tests and for checking the table."""
    try:
        _lark().parse(text, start=start)
    except UnexpectedToken as e:
        return syntax_class(_situation(e, text, start)).label
    except UnexpectedInput:
        return None
    return None


def _describe(expected: frozenset[str]) -> str:
    names = sorted({_DESCRIBE.get(t, f"'{t.lower()}'") for t in expected})
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


# --------------------------------------------------------------------------- tree → AST


def _tok_span(tok: Token) -> tuple[int, int]:
    return tok.start_pos, tok.end_pos


def _span(*parts) -> tuple[int, int]:
    starts, ends = [], []
    for p in parts:
        if p is None:
            continue
        if isinstance(p, Token):
            starts.append(p.start_pos)
            ends.append(p.end_pos)
        elif isinstance(p, ast.Node):
            starts.append(p.start)
            ends.append(p.end)
    return min(starts), max(ends)


def _nest(node: ast.Node, *children: ast.Node) -> ast.Node:
    """Record how deep ``node`` nests; refuse it past ``MAX_DEPTH`` (the compiler recurses)."""
    depth = 1 + max((getattr(c, "depth", 0) for c in children), default=0)
    if depth > MAX_DEPTH:
        raise TextError(
            node.start,
            f"nested too deeply (more than {MAX_DEPTH} levels)",
            "simplify the expression, or compute parts of it with 'set NAME = ...'",
        )
    node.depth = depth
    return node


def _name(tok: Token) -> ast.Name:
    return ast.Name(tok.start_pos, tok.end_pos, str(tok))


def _unescape(literal: str) -> str:
    body = literal[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_STR_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _items(children) -> list:
    return [c for c in children if isinstance(c, ast.Node)]


class _Build(Transformer_NonRecursive):
    """Lark tree → ``dsl.ast``: one method per grammar alias."""

    # ---- steps
    def send(self, c):
        kw, word, args = c[0], c[1], (c[2] if len(c) > 2 else [])
        return ast.SendStep(*_span(kw, word, *args), _name(word), args)

    def send_args(self, c):
        return list(c)

    def kwarg(self, c):
        name, value = c
        return ast.Kwarg(*_span(name, value), str(name), value)

    def notify(self, c):
        kw, team, tmpl = c[0], c[1], c[2]
        args = c[3] if len(c) > 3 else []
        return ast.NotifyStep(*_span(kw, team, tmpl, *args), _name(team), _name(tmpl), args)

    def wait(self, c):
        kw, dur = c
        return ast.WaitStep(*_span(kw, dur), dur)

    def wait_for(self, c):
        kw, event = c[0], c[1]
        where = within = None
        for part in c[2:]:
            if isinstance(part, ast.Duration):
                within = part
            elif part is not None:
                where = part[1]
        return ast.WaitForStep(*_span(kw, event, where, within), event, where, within)

    def wait_until_time(self, c):
        kw, _until, t = c
        return ast.WaitUntilStep(*_span(kw, t), time=str(t), time_start=t.start_pos)

    def wait_until(self, c):
        kw, _until, at = c
        return ast.WaitUntilStep(*_span(kw, at), at=at)

    def where(self, c):
        return ("where", c[0])

    def within(self, c):
        return c[0]

    def event(self, c):
        return _name(c[0])

    def duration(self, c):
        minus = c[0] if len(c) == 3 else None
        number, unit = c[-2], c[-1]
        return ast.Duration(
            *_span(minus, number, unit), str(number), minus is not None, str(unit), unit.start_pos
        )

    def if_header(self, c):
        kw, cond = c
        return ast.IfStep(*_span(kw, cond), cond)

    def call(self, c):
        kw, name = c[0], c[1]
        bind = c[-1] if isinstance(c[-1], ast.Name) else None
        args = [x for x in c[2:] if isinstance(x, ast.Kwarg)]
        rpar = next(x for x in c if isinstance(x, Token) and x.type == "RPAR")
        return ast.CallStep(*_span(kw, rpar, bind), _name(name), args, bind)

    def bind(self, c):
        return _name(c[0])

    def set(self, c):
        kw, target, value = c
        return ast.SetStep(*_span(kw, target, value), target, value)

    def exit(self, c):
        return ast.ExitStep(*_tok_span(c[0]))

    def split_header(self, c):
        kw, name = c
        return ast.SplitStep(*_span(kw, name), _name(name))

    def variant(self, c):
        name, percent = c
        return ast.Variant(name.start_pos, percent.end, _name(name), percent)

    def percent(self, c):
        number, sign = c
        return ast.Percent(number.start_pos, sign.end_pos, str(number))

    # ---- triggers
    def event_trigger(self, c):
        return ast.TriggerNode(*_tok_span(c[0]), "event", event=_name(c[0]))

    def inactivity_trigger(self, c):
        kw, event, _for, dur = c
        return ast.TriggerNode(*_span(kw, dur), "inactivity", event=_name(event), duration=dur)

    def yearly_trigger(self, c):
        kw, path, at = c[0], c[3], c[4]
        return ast.TriggerNode(*_span(kw, path, at), "date", path=path, yearly=True, at=at)

    def date_trigger(self, c):
        kw, path, offset, at = c
        node = ast.TriggerNode(*_span(kw, path, at, offset and offset[1]), "date", path=path)
        if offset is not None:
            node.negative = offset[0] == "-"
            node.duration = offset[1]
        node.at = at
        return node

    def trigger_offset(self, c):
        return (str(c[0]), c[1])

    def at_time(self, c):
        return _name(c[1])

    def entering_trigger(self, c):
        kw, expr = c
        return ast.TriggerNode(*_span(kw, expr), "segment", expr=expr)

    # ---- reentry
    def never(self, c):
        return ast.ReentryPolicy(*_tok_span(c[0]), "never")

    def always(self, c):
        return ast.ReentryPolicy(*_tok_span(c[0]), "always")

    def after(self, c):
        kw, dur = c
        return ast.ReentryPolicy(*_span(kw, dur), "after", dur)

    # ---- expressions
    def expression(self, c):
        return c[0]

    def or_(self, c):
        left, op, right = c
        return _nest(ast.BoolOp(*_span(left, right), "or", left, right, op.start_pos), left, right)

    def and_(self, c):
        left, op, right = c
        return _nest(ast.BoolOp(*_span(left, right), "and", left, right, op.start_pos), left, right)

    def not_(self, c):
        op, operand = c
        return _nest(ast.Not(*_span(op, operand), operand), operand)

    def cmp(self, c):
        left, op, right = c
        return _nest(ast.Cmp(*_span(left, right), str(op), left, right, op.start_pos), left, right)

    def not_in(self, c):
        left, op, _in, right = c
        return _nest(ast.Cmp(*_span(left, right), "not in", left, right, op.start_pos), left, right)

    def arith(self, c):
        left, op, right = c
        return _nest(
            ast.Arith(*_span(left, right), str(op), left, right, op.start_pos), left, right
        )

    def neg(self, c):
        op, operand = c
        return _nest(ast.Neg(*_span(op, operand), operand), operand)

    def group(self, c):
        lpar, inner, rpar = c
        inner.start, inner.end = lpar.start_pos, rpar.end_pos
        return _nest(inner, inner)

    def number(self, c):
        tok = c[0]
        value = float(tok) if "." in tok else int(tok)
        return ast.Lit(*_tok_span(tok), value)

    def string(self, c):
        return ast.Lit(*_tok_span(c[0]), _unescape(str(c[0])))

    def true(self, c):
        return ast.Lit(*_tok_span(c[0]), True)

    def false(self, c):
        return ast.Lit(*_tok_span(c[0]), False)

    def null(self, c):
        return ast.Lit(*_tok_span(c[0]), None)

    def list(self, c):
        items = _items(c)
        return _nest(ast.ListLit(*_span(c[0], c[-1]), items), *items)

    def func(self, c):
        name = c[0]
        args = _items(c)
        return _nest(ast.Func(*_span(name, c[-1]), str(name), args), *args)

    def field_path(self, c):
        return self.path(c)

    def path(self, c):
        return ast.Path(*_span(*c), [str(t) for t in c], [t.start_pos for t in c])
