"""The expression evaluator: compiled-plan expression trees to fast, total Python callables.

In: an expression tree in the format documented in ``dsl.ir`` (or a ``dsl.ir.Expr``
carrying one) and, per evaluation, a context dict
``{"customer": dict, "trigger": dict, "event": dict | None, "vars": dict, "now": datetime}``
(any key may be missing: a missing scope is empty, a missing ``now`` makes the functions
that need it return null).
Out: ``compile_expr(tree) -> fn(ctx) -> value`` (compiled once, cached by the tree's JSON),
``evaluate(tree, ctx)`` and ``truthy(value)``.

How: a tree becomes Python source for one function, ``compile()``d once; evaluating is one
call into that code object, with no walk over the tree. Every value from the tree (string
and number literals, attribute names, function implementations) reaches the generated code
as a global constant (``_c0``, ``_c1``...), never as pasted text, so a rule cannot inject
code; the generated code gets no builtins. The fast code has one ``try`` around the whole
body: when anything raises (a weird value, an overflow, a function that fails), the same
tree is re-run by ``_interpret``, a small stack machine that guards every node and turns a
failing node into null. Expressions are pure, so re-running is safe. Trees deeper than
``CODEGEN_MAX_DEPTH`` (Python's parser gives up around 200 nested parentheses) go straight
to that stack machine, which is built and run without recursion (5,000 nested ``not`` work).

Semantics (CONTRACT.md section 1). Values are JSON values: dict, list, str, int, float,
bool, None, checked by exact type (a subclass of int other than bool, or of str, behaves as
an unknown type: equal only by Python ``==``, never ordered, no arithmetic, not a container).

- A missing attribute is null; an attribute of a non-dict is null.
- ``==`` / ``!=``: Python equality, except that a bool never equals a number
  (``true == 1`` is false). The rule applies to the two operands, not inside lists.
  ``x == null`` is true when x is missing.
- ``< <= > >=``: true only for two numbers or two strings; anything else is false.
- ``+``: two numbers add, two strings or two lists concatenate; ``- * /`` take two numbers;
  ``-x`` takes a number. Anything else, a division by zero, and a result that overflows
  (or is not a finite float) is null.
- ``x in c``: c a list: membership (bool/number-strict like ``==``); c a string: substring,
  for a string x; c a dict: x a string key. Any other c (null included): false.
- ``x not in c``: the negation of ``in`` when c is a list, string or dict; false when c is
  anything else (null included). So ``x in null`` and ``x not in null`` are both false:
  a missing list says nothing about membership, and a condition on it should not fire.
- ``and`` / ``or`` short-circuit and return booleans; ``not`` returns a boolean.
  Truthiness (``truthy``): null, false, 0, 0.0, "", [], {} are false; all else is true.
- ``f(...)`` calls ``dsl.functions.FUNCTIONS[f].impl(now, *args)``; an exception inside
  a function makes that call null.

No expression raises at run time whatever the data. A malformed tree (unknown node,
unknown function, wrong arity: things the compiler rules out) raises ``ExpressionError``
from ``compile_expr``/``evaluate``. Standard library only, no I/O, no clock or randomness:
importable and deterministic inside Temporal's workflow sandbox.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from dsl.functions import FUNCTIONS
from dsl.ir import Expr

__all__ = ["CODEGEN_MAX_DEPTH", "ExpressionError", "compile_expr", "evaluate", "truthy"]

# Tree depth above which no Python source is generated (each level adds up to three
# parentheses; CPython's tokenizer stops at 200 nested ones).
CODEGEN_MAX_DEPTH = 40
_CACHE_LIMIT = 10_000  # compiled expressions kept; a plan has a few hundred at most

_NUM = (int, float)  # `x.__class__ in _NUM` is False for bool, on purpose
_CONTAINERS = (list, str, dict)
_EMPTY = MappingProxyType({})  # a missing or non-dict scope; read-only so it stays empty
# Context key of each path scope.
_SCOPE_KEYS = {"customer": "customer", "trigger": "trigger", "event": "event", "var": "vars"}
_CMP_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
_ARITH_OPS = ("+", "-", "*", "/")


class ExpressionError(ValueError):
    """A malformed expression tree (a compiler bug, never bad data)."""


# --------------------------------------------------------------------------- semantics
# One definition of each operator, used by the generated code for the general case and by
# the stack machine always. The generated code inlines some cases (a literal operand);
# tests check the two agree.


def truthy(value: Any) -> bool:
    """null, false, 0, "", [] and {} are false; everything else is true."""
    try:
        return bool(value)
    except Exception:
        return False


def _eq(a: Any, b: Any) -> bool:
    return a == b and (a.__class__ is bool) is (b.__class__ is bool)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _orderable(a: Any, b: Any) -> bool:
    ca, cb = a.__class__, b.__class__
    return (ca in _NUM and cb in _NUM) or (ca is str and cb is str)


def _lt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a < b


def _le(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a <= b


def _gt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a > b


def _ge(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a >= b


def _in(x: Any, c: Any) -> bool:
    cc = c.__class__
    if cc is list:
        if x.__class__ is bool:
            return any(e is x for e in c)
        if x.__class__ in _NUM:
            return any(e == x and e.__class__ is not bool for e in c)
        return x in c
    if cc is str or cc is dict:
        return x.__class__ is str and x in c
    return False


def _not_in(x: Any, c: Any) -> bool:
    return c.__class__ in _CONTAINERS and not _in(x, c)


# Integers stay exact up to this many bits; past it a result is null. Python ints grow
# without bound, and a chain of products (repeated squaring of a big value from data)
# would otherwise take time and memory without limit.
_INT_BITS = 4096
# Longest string or list that `+` makes (the same reasoning, for memory).
_MAX_LENGTH = 1_000_000


def _finite(r: Any) -> Any:
    # inf and nan are not JSON and never equal themselves: arithmetic that makes one is null
    if r.__class__ is float and not math.isfinite(r):
        return None
    if r.__class__ is int and r.bit_length() > _INT_BITS:
        return None
    return r


def _add(a: Any, b: Any) -> Any:
    ca, cb = a.__class__, b.__class__
    if ca in _NUM and cb in _NUM:
        return _finite(a + b)
    if ca is cb and (ca is str or ca is list):
        # `set x = x + x` doubles each time: past a million items the result is null
        return a + b if len(a) + len(b) <= _MAX_LENGTH else None
    return None


def _sub(a: Any, b: Any) -> Any:
    if a.__class__ in _NUM and b.__class__ in _NUM:
        return _finite(a - b)
    return None


def _mul(a: Any, b: Any) -> Any:
    # numbers only: `"x" * 10**9` would be a memory bomb, and `[1] * 3` is not in the language
    if a.__class__ in _NUM and b.__class__ in _NUM:
        return _finite(a * b)
    return None


def _div(a: Any, b: Any) -> Any:
    if a.__class__ in _NUM and b.__class__ in _NUM and b != 0:
        return _finite(a / b)
    return None


def _neg(a: Any) -> Any:
    return -a if a.__class__ in _NUM else None


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _eq,
    "!=": _ne,
    "<": _lt,
    "<=": _le,
    ">": _gt,
    ">=": _ge,
    "in": _in,
    "not in": _not_in,
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
}
_HELPER_NAMES = {
    "==": "_eq",
    "!=": "_ne",
    "<": "_lt",
    "<=": "_le",
    ">": "_gt",
    ">=": "_ge",
    "in": "_in",
    "not in": "_not_in",
    "+": "_add",
    "-": "_sub",
    "*": "_mul",
    "/": "_div",
}


# --------------------------------------------------------------------------- validation
# and the stack machine. `_linearize` checks the tree and turns it into a flat program
# without recursion; `_interpret` runs a program, guarding every node.


def _fail(message: str, node: Any) -> ExpressionError:
    text = repr(node)
    if len(text) > 80:
        text = text[:77] + "..."
    return ExpressionError(f"{message}: {text}")


def _check_lit(node: list) -> Any:
    if len(node) != 2:
        raise _fail("malformed lit", node)
    value = node[1]
    if value is not None and value.__class__ not in (str, int, float, bool):
        raise _fail("literal must be str, number, bool or null", node)
    return value


def _check_path(node: list) -> tuple[str, tuple[str, ...]]:
    if len(node) != 3 or node[1] not in _SCOPE_KEYS or not isinstance(node[2], list):
        raise _fail("malformed path", node)
    names = tuple(node[2])
    if any(n.__class__ is not str for n in names) or (node[1] == "var" and not names):
        raise _fail("malformed path", node)
    return _SCOPE_KEYS[node[1]], names


def _check_call(node: list) -> tuple[Callable[..., Any], list]:
    if len(node) != 3 or not isinstance(node[2], list) or node[1].__class__ is not str:
        raise _fail("malformed call", node)
    function = FUNCTIONS.get(node[1])
    if function is None:
        raise _fail(f"unknown function {node[1]!r}", node)
    lo, hi = function.arity
    if not lo <= len(node[2]) <= hi:
        raise _fail(f"{node[1]}() takes {lo}..{hi} arguments, got {len(node[2])}", node)
    return function.impl, node[2]


def _children(node: Any) -> list:
    """The sub-trees of a node, after checking its shape."""
    if not isinstance(node, list) or not node or node[0].__class__ is not str:
        raise _fail("malformed expression node", node)
    tag = node[0]
    if tag == "lit":
        _check_lit(node)
        return []
    if tag == "path":
        _check_path(node)
        return []
    if tag == "list":
        if len(node) != 2 or not isinstance(node[1], list):
            raise _fail("malformed list", node)
        return node[1]
    if tag in ("not", "neg"):
        if len(node) != 2:
            raise _fail(f"malformed {tag}", node)
        return [node[1]]
    if tag in ("and", "or"):
        if len(node) != 3:
            raise _fail(f"malformed {tag}", node)
        return [node[1], node[2]]
    if tag in ("cmp", "arith"):
        ops = _CMP_OPS if tag == "cmp" else _ARITH_OPS
        if len(node) != 4 or node[1] not in ops:
            raise _fail(f"malformed {tag}", node)
        return [node[2], node[3]]
    if tag == "call":
        return _check_call(node)[1]
    raise _fail(f"unknown expression node {tag!r}", node)


def _depth(tree: Any) -> int:
    """The tree's depth, checking every node's shape; iterative, so any depth is fine."""
    deepest = 0
    work = [(tree, 1)]
    while work:
        node, depth = work.pop()
        deepest = max(deepest, depth)
        for child in _children(node):
            work.append((child, depth + 1))
    return deepest


def _linearize(tree: Any) -> list[tuple]:
    """A checked tree as a flat postfix program with jumps for ``and`` / ``or``."""
    program: list[tuple] = []
    work: list[tuple[str, Any]] = [("node", tree)]
    while work:
        kind, item = work.pop()
        if kind == "emit":
            program.append(item)
            continue
        if kind == "label":
            item[0] = len(program)
            continue
        node = item
        _children(node)  # checks the shape
        tag = node[0]
        # Work is a stack: push what comes last first.
        if tag == "lit":
            program.append(("lit", node[1]))
        elif tag == "path":
            program.append(("path", *_check_path(node)))
        elif tag == "list":
            work.append(("emit", ("list", len(node[1]))))
            work.extend(("node", e) for e in reversed(node[1]))
        elif tag in ("not", "neg"):
            work.append(("emit", (tag,)))
            work.append(("node", node[1]))
        elif tag in ("and", "or"):
            label = [0]
            work.append(("label", label))
            work.append(("emit", ("bool",)))
            work.append(("node", node[2]))
            work.append(("emit", (tag, label)))
            work.append(("node", node[1]))
        elif tag in ("cmp", "arith"):
            work.append(("emit", ("binary", _BINARY[node[1]])))
            work.append(("node", node[3]))
            work.append(("node", node[2]))
        else:  # call
            impl, args = _check_call(node)
            work.append(("emit", ("call", impl, len(args))))
            work.extend(("node", e) for e in reversed(args))
    return program


def _interpret(program: list[tuple], ctx: Any) -> Any:
    """Run a linear program; a node that raises is null, so this never raises either."""
    try:
        if not isinstance(ctx, dict):
            ctx = {}
        now = ctx.get("now")
        stack: list[Any] = []
        push = stack.append
        pc, end = 0, len(program)
        while pc < end:
            ins = program[pc]
            op = ins[0]
            pc += 1
            if op == "lit":
                push(ins[1])
            elif op == "path":
                value = ctx.get(ins[1])
                if not ins[2]:
                    push(value if value.__class__ is dict else None)
                    continue
                for name in ins[2]:
                    value = value.get(name) if value.__class__ is dict else None
                push(value)
            elif op == "binary":
                b = stack.pop()
                a = stack.pop()
                try:
                    push(ins[1](a, b))
                except Exception:
                    push(None)
            elif op in ("and", "or"):
                test = truthy(stack.pop())
                if test is (op == "or"):  # decided: false for and, true for or
                    push(test)
                    pc = ins[1][0]
            elif op == "bool":
                stack[-1] = truthy(stack[-1])
            elif op == "not":
                stack[-1] = not truthy(stack[-1])
            elif op == "neg":
                try:
                    stack[-1] = _neg(stack[-1])
                except Exception:
                    stack[-1] = None
            elif op == "list":
                count = ins[1]
                items = stack[len(stack) - count :]
                del stack[len(stack) - count :]
                push(items)
            else:  # call
                count = ins[2]
                args = stack[len(stack) - count :]
                del stack[len(stack) - count :]
                try:
                    push(ins[1](now, *args))
                except Exception:
                    push(None)
        return stack[-1]
    except Exception:
        return None


# --------------------------------------------------------------------------- code generation


class _Codegen:
    """A checked, shallow tree as the source of ``def _expr(ctx)`` plus its globals."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self.temps = 0
        self.scopes: dict[str, str] = {}  # context key -> local variable
        self.uses_now = False

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def scope(self, key: str) -> str:
        return self.scopes.setdefault(key, f"_s{len(self.scopes)}")

    def source(self, tree: list) -> str:
        body = self.gen(tree)[0]
        lines = ["def _expr(ctx):", "    try:"]
        for key, local in self.scopes.items():
            # `key` is one of our own _SCOPE_KEYS, never text from the tree
            lines.append(f"        {local} = ctx.get({key!r})")
            lines.append(f"        if {local}.__class__ is not _dict: {local} = _EMPTY")
        if self.uses_now:
            lines.append("        _now = ctx.get('now')")
        lines.append(f"        return {body}")
        lines.append("    except Exception:")
        lines.append("        return _fallback(ctx)")
        return "\n".join(lines) + "\n"

    def gen(self, node: list) -> tuple[str, bool]:
        """Python source for a node (always an atom) and whether it is surely a bool."""
        tag = node[0]
        if tag == "lit":
            value = node[1]
            if value is None or value is True or value is False:
                return repr(value), value is not None
            return self.const(value), False
        if tag == "list":
            return "[" + "".join(self.gen(e)[0] + ", " for e in node[1]) + "]", False
        if tag == "path":
            key, names = _check_path(node)
            if not names:
                t = self.temp()
                return f"({t} if ({t} := ctx.get({key!r})).__class__ is _dict else None)", False
            code = f"{self.scope(key)}.get({self.const(names[0])})"
            for name in names[1:]:
                t = self.temp()
                code = (
                    f"({t}.get({self.const(name)}) if ({t} := {code}).__class__ is _dict else None)"
                )
            return code, False
        if tag == "not":
            return f"(not {self.gen(node[1])[0]})", True
        if tag == "neg":
            return f"_neg({self.gen(node[1])[0]})", False
        if tag in ("and", "or"):
            a, a_bool = self.gen(node[1])
            b, b_bool = self.gen(node[2])
            if a_bool and b_bool:
                return f"({a} {tag} {b})", True
            return f"(True if {a} {tag} {b} else False)", True
        if tag == "cmp":
            return self.compare(node[1], node[2], node[3]), True
        if tag == "arith":
            a = self.gen(node[2])[0]
            b = self.gen(node[3])[0]
            return f"{_HELPER_NAMES[node[1]]}({a}, {b})", False
        # call
        impl, args = _check_call(node)
        self.uses_now = True
        fn = self.const(impl)
        return f"{fn}(_now" + "".join(", " + self.gen(e)[0] for e in args) + ")", False

    def compare(self, op: str, left: list, right: list) -> str:
        # Inline the common shapes with a literal operand; the rest calls the helpers.
        if op in ("==", "!="):
            code = self.equal(left, right) or self.equal(right, left)
            if code is None:  # _eq, inlined: `where event.x == trigger.x` is common
                a, b = self.gen(left)[0], self.gen(right)[0]
                ta, tb = self.temp(), self.temp()
                code = (
                    f"(({ta} := {a}) == ({tb} := {b})"
                    f" and ({ta}.__class__ is _bool) is ({tb}.__class__ is _bool))"
                )
            return code if op == "==" else f"(not {code})"
        if op in ("<", "<=", ">", ">="):
            if right[0] == "lit":
                return self.order(op, left, right[1], False)
            if left[0] == "lit":
                return self.order(op, right, left[1], True)
        if op in ("in", "not in"):
            code = self.member(left, right)
            if code is not None:
                return code if op == "in" else f"(not {code})" if code != "False" else code
        a = self.gen(left)[0]
        b = self.gen(right)[0]
        return f"{_HELPER_NAMES[op]}({a}, {b})"

    def equal(self, other: list, lit: list) -> str | None:
        if lit[0] != "lit":
            return None
        value = lit[1]
        a = self.gen(other)[0]
        if value is None or value is True or value is False:
            return f"({a} is {value!r})"
        c = self.const(value)
        if value.__class__ is str:
            return f"({a} == {c})"
        t = self.temp()
        return f"(({t} := {a}) == {c} and {t}.__class__ is not _bool)"

    def order(self, op: str, other: list, value: Any, flipped: bool) -> str:
        if value.__class__ in _NUM:
            check = "in _NUM"
        elif value.__class__ is str:
            check = "is _str"
        else:
            return "False"  # null or bool: never ordered (the other side is pure, skip it)
        a = self.gen(other)[0]
        c = self.const(value)
        t = self.temp()
        test = f"{c} {op} {t}" if flipped else f"{t} {op} {c}"
        return f"(({t} := {a}).__class__ {check} and {test})"

    def member(self, needle: list, hay: list) -> str | None:
        """Inline ``in`` for a literal right side; None when not inlinable."""
        if hay[0] == "lit":
            value = hay[1]
            if value.__class__ is not str:
                return "False"  # null, number, bool: not a container
            t = self.temp()
            return (
                f"(({t} := {self.gen(needle)[0]}).__class__ is _str and {t} in {self.const(value)})"
            )
        if hay[0] != "list" or any(e[0] != "lit" for e in hay[1]):
            return None
        values = [e[1] for e in hay[1]]
        if all(v is None or v.__class__ is str for v in values):
            # tuple membership is exact here: a str or null only equals a str or null
            return f"({self.gen(needle)[0]} in {self.const(tuple(values))})"
        if all(v.__class__ is not bool for v in values):
            t = self.temp()
            tup = self.const(tuple(values))
            return f"(({t} := {self.gen(needle)[0]}).__class__ is not _bool and {t} in {tup})"
        return f"_in({self.gen(needle)[0]}, {self.const(values)})"


_RUNTIME_GLOBALS: dict[str, Any] = {
    "__builtins__": {},  # the generated code needs none; a rule gets none
    "Exception": Exception,
    "_dict": dict,
    "_str": str,
    "_bool": bool,
    "_NUM": _NUM,
    "_EMPTY": _EMPTY,
    "_neg": _neg,
    **{name: _BINARY[op] for op, name in _HELPER_NAMES.items()},
}


def _build(tree: Any) -> Callable[[dict], Any]:
    depth = _depth(tree)  # checks every node; raises ExpressionError
    program: list[tuple] | None = None

    def fallback(ctx: Any) -> Any:
        nonlocal program
        if program is None:
            program = _linearize(tree)
        return _interpret(program, ctx)

    if depth > CODEGEN_MAX_DEPTH:
        program = _linearize(tree)
        return fallback
    gen = _Codegen()
    source = gen.source(tree)
    namespace = {**_RUNTIME_GLOBALS, **gen.consts, "_fallback": fallback}
    try:
        exec(compile(source, "<expression>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return fallback  # a shape CPython's compiler refuses; the stack machine takes any
    return namespace["_expr"]


# --------------------------------------------------------------------------- public API

_by_key: dict[str, Callable[[dict], Any]] = {}
# Expr objects are unhashable (their tree is a list); remember them by identity, keeping
# the object alive so its id is not reused.
_by_id: dict[int, tuple[Expr, Callable[[dict], Any]]] = {}


def _cache_key(tree: Any) -> str:
    try:
        return json.dumps(tree, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        pass
    # Deep trees and huge integers: an iterative, type-tagged serialization.
    parts: list[str] = []
    work: list[Any] = [tree]
    close = object()
    while work:
        item = work.pop()
        if item is close:
            parts.append("]")
        elif isinstance(item, list):
            parts.append("[")
            work.append(close)
            work.extend(reversed(item))
        elif item.__class__ is int:
            parts.append(f"i{item:x},")
        elif item.__class__ is float:
            parts.append(f"f{item.hex()},")
        elif item is None or item.__class__ in (str, bool):
            parts.append(json.dumps(item) + ",")
        else:
            raise _fail("expression trees hold only lists and JSON scalars", item)
    return "".join(parts)


def compile_expr(expr: Expr | list) -> Callable[[dict], Any]:
    """A callable ``fn(ctx) -> value`` for an expression; cached, never raises when called.

    Raises ``ExpressionError`` for a malformed tree.
    """
    if isinstance(expr, Expr):
        hit = _by_id.get(id(expr))
        if hit is not None and hit[0] is expr:
            return hit[1]
        tree = expr.tree
    else:
        tree = expr
    key = _cache_key(tree)
    fn = _by_key.get(key)
    if fn is None:
        if len(_by_key) >= _CACHE_LIMIT:
            _by_key.clear()
        fn = _by_key[key] = _build(tree)
    if isinstance(expr, Expr):
        if len(_by_id) >= _CACHE_LIMIT:
            _by_id.clear()
        _by_id[id(expr)] = (expr, fn)
    return fn


def evaluate(expr: Expr | list, ctx: dict) -> Any:
    """The value of an expression in a context; never raises for any context."""
    return compile_expr(expr)(ctx)
