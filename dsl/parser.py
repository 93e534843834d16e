"""The Lark front end: one step line, expression, duration, event name or reentry policy.

In: the text of one YAML scalar (``send welcome with discount=10``, ``customer.age > 18``).
Out: a ``dsl.ast`` node whose spans are offsets inside that text, or a ``TextError`` with
the offset of the problem and a message that says how to fix it. Lark's exceptions never
escape: every syntax error is classified in ``_syntax_error``.

Limits keep hostile input cheap: a text longer than ``MAX_TEXT`` characters is refused before
parsing, and a tree nested deeper than ``MAX_DEPTH`` while it is being built (the AST is
built by the LALR reductions, which are iterative, so deep input never recurses).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dsl import ast
from dsl.errors import TextError, did_you_mean

MAX_TEXT = 10_000  # characters in one step line or expression
MAX_DEPTH = 100  # nesting of the parse tree (parentheses, not, operators)

STEP_KEYWORDS = ("send", "notify", "wait", "if", "call", "set", "exit")
_GRAMMAR_FILE = Path(__file__).with_name("grammar.lark")
_EXPR_START = {"NAME", "NUMBER", "STRING", "LPAR", "LSQB", "NOT", "MINUS", "TRUE", "FALSE", "NULL"}
_DESCRIBE = {
    "NAME": "a name",
    "WORD": "a name",
    "EVENT": "an event name",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "STRING": "a string",
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
}
_STR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_PREV_TOKEN = re.compile(r"(==|!=|<=|>=|[A-Za-z0-9_.\-]+|\S)\s*$")


@functools.cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR_FILE.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        start=["step", "expression", "duration", "event", "reentry"],
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
}


# --------------------------------------------------------------------------- syntax errors


def _syntax_error(e: UnexpectedInput, text: str, start: str) -> TextError:
    """Turn any Lark error into a message that says what to write instead."""
    what = _WHAT[start]
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(e.pos_in_stream, text)
    if not isinstance(e, UnexpectedToken):  # UnexpectedEOF and future kinds
        end = len(text.rstrip())
        return TextError(end, f"unexpected end of the {what}")
    tok = e.token
    expected = set(e.expected)
    at_end = tok.type == "$END"
    pos = len(text.rstrip()) if at_end else tok.start_pos
    prev_match = _PREV_TOKEN.search(text[:pos])
    prev = prev_match.group(1) if prev_match else None
    found = "the end" if at_end else f"'{tok.value}'"

    if prev is None and start == "step":
        word = str(tok.value)
        return TextError(
            pos,
            f"unknown step '{word}'",
            did_you_mean(word, STEP_KEYWORDS)
            or "a step starts with send, notify, wait, if, call, set or exit",
        )
    if tok.type == "EQUAL" and ("COMP_OP" in expected or "$END" in expected):
        return TextError(pos, "'=' is not a comparison", "use '==' to compare values")
    if tok.type == "EQUAL" and text[:pos].endswith("="):
        return TextError(pos - 1, "unexpected '=='", "use a single '=' to give a value")
    if tok.type == "COMP_OP" and ("AND" in expected or "$END" in expected):
        return TextError(
            pos, "comparisons cannot be chained", "write 'a < b and b < c' instead of 'a < b < c'"
        )
    if expected & _EXPR_START and "NAME" in expected and "NUMBER" in expected:
        after = f" after '{prev}'" if prev else ""
        if at_end:
            return TextError(pos, f"expected an expression{after}")
        return TextError(pos, f"expected an expression{after}, found {found}")
    if "UNIT" in expected:
        return TextError(
            pos,
            f"expected a unit after '{prev}', found {found}",
            "write e.g. '2 days' or '2d'; units: seconds, minutes, hours, days, weeks",
        )
    if "NUMBER" in expected and "MINUS" in expected:
        hint = "write e.g. '2 days' or '36h'"
        if prev == "wait":
            hint = "write 'wait 2 days', or 'wait for EVENT within DURATION'"
        return TextError(pos, f"expected a duration after '{prev}', found {found}", hint)
    if "EVENT" in expected:
        return TextError(
            pos,
            f"expected an event name after '{prev}', found {found}",
            "event names look like 'order.placed'",
        )
    if "WORD" in expected:
        kind = "team" if prev == "notify" else "template"
        return TextError(pos, f"expected a {kind} name after '{prev}', found {found}")
    if expected == {"WITH"}:
        return TextError(
            pos, "notify needs 'with TEMPLATE'", "write: notify TEAM with TEMPLATE [with NAME=EXPR]"
        )
    if "RPAR" in expected and at_end:
        return TextError(pos, "missing ')'")
    if "RSQB" in expected and at_end:
        return TextError(pos, "missing ']'")
    if "LPAR" in expected and prev and start == "step" and text.lstrip().startswith("call"):
        return TextError(
            pos,
            f"expected '(' after '{prev}', found {found}",
            "write: call ACTIVITY(NAME=EXPR, ...) [as NAME]",
        )
    if not at_end and ("AND" in expected or "COMP_OP" in expected):
        hint = _operator_hint(str(tok.value)) or "join conditions with 'and' or 'or'"
        if "COMMA" in expected and text.split(None, 1)[0] in ("send", "notify", "call"):
            hint = "separate arguments with ','"
        return TextError(pos, f"unexpected {found} after '{prev}'", hint)
    if "$END" in expected and not at_end:
        hint = _operator_hint(str(tok.value))
        return TextError(pos, f"unexpected {found} after the end of the {what}", hint)
    if at_end:
        return TextError(pos, f"unexpected end of the {what}; expected {_describe(expected)}")
    return TextError(pos, f"unexpected {found}; expected {_describe(expected)}")


def _bad_character(pos: int, text: str) -> TextError:
    ch = text[pos]
    if ch in "\"'":
        return TextError(pos, "unterminated string", f"close it with {ch}")
    if ch == "&":
        return TextError(pos, "unexpected character '&'", "use 'and'")
    if ch == "|":
        return TextError(pos, "unexpected character '|'", "use 'or'")
    if ch == "!":
        return TextError(pos, "unexpected character '!'", "use 'not', or '!=' to compare")
    if ch == ":":
        return TextError(
            pos,
            "unexpected character ':'",
            "only a block step ('if ...:', 'wait for ...:') ends with ':'",
        )
    return TextError(pos, f"unexpected character {ch!r}")


def _operator_hint(value: str) -> str | None:
    return {
        "=": "use '==' to compare values",
        "&&": "use 'and'",
        "||": "use 'or'",
    }.get(value)


def _describe(expected: set[str]) -> str:
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

    def path(self, c):
        return ast.Path(*_span(*c), [str(t) for t in c], [t.start_pos for t in c])
