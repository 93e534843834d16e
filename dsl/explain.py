"""What an expression read when it was evaluated: the operands behind ``lifecycle why``.

In: an expression tree in the format of ``dsl.ir`` (or an ``Expr``) and the context it was
evaluated in (``dsl.evaluator``'s). Out: ``operands(tree)``, the paths and function calls
the expression reads, as source-like text (``customer.plan``, ``trigger.total``,
``days_since(customer.last_order_at)``), each with its sub-tree, in order of first
appearance and without repeats; ``operand_values(tree, ctx)``, the value of each in that
context; ``render(tree)``, the whole tree as expression text.

A path's value is what the evaluator reads for it (a missing attribute is null). A call is
an operand of its own (with its arguments' paths beside it): ``days_since(...)`` depends on
the clock, so its value says more than its argument's. Pure, standard library only:
importable inside Temporal's workflow sandbox.
"""

from __future__ import annotations

import json
from typing import Any

from dsl import evaluator
from dsl.ir import Expr

MAX_OPERANDS = 10  # operands listed per expression; more are counted, not listed

_SCOPES = {"customer": "customer.", "trigger": "trigger.", "event": "event.", "var": ""}
# Binding strength, loosest first, for parentheses in render()
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def _tree(expr: Expr | list) -> list:
    return expr.tree if isinstance(expr, Expr) else expr


def _path_text(node: list) -> str:
    return _SCOPES.get(node[1], f"{node[1]}.") + ".".join(str(n) for n in node[2])


def _strength(node: Any) -> int:
    if not isinstance(node, list) or not node:
        return 9
    tag = node[0]
    if tag == "arith":
        return _PRECEDENCE.get(node[1], 5)
    return _PRECEDENCE.get(tag, 9)


def render(expr: Expr | list) -> str:
    """The tree as expression text (parentheses only where binding needs them).
    Recursive: meant for the shallow trees of rules, not for 5,000 nested ``not``."""
    node = _tree(expr)
    if not isinstance(node, list) or not node:
        return "?"
    tag = node[0]

    def sub(child: Any, strength: int, right: bool = False) -> str:
        text = render(child)
        inner = _strength(child)
        return f"({text})" if inner < strength or (right and inner == strength) else text

    if tag == "lit":
        return json.dumps(node[1])
    if tag == "path":
        return _path_text(node)
    if tag == "list":
        return "[" + ", ".join(render(item) for item in node[1]) + "]"
    if tag == "not":
        return "not " + sub(node[1], _PRECEDENCE["not"])
    if tag == "neg":
        return "-" + sub(node[1], _PRECEDENCE["neg"])
    if tag in ("and", "or"):
        strength = _PRECEDENCE[tag]
        return f"{sub(node[1], strength)} {tag} {sub(node[2], strength, right=True)}"
    if tag in ("cmp", "arith"):
        strength = _strength(node)
        left = strength + 1 if tag == "cmp" else strength  # a comparison does not chain
        return f"{sub(node[2], left)} {node[1]} {sub(node[3], strength, right=True)}"
    if tag == "call":
        return f"{node[1]}(" + ", ".join(render(arg) for arg in node[2]) + ")"
    return "?"


def operands(expr: Expr | list) -> list[tuple[str, list]]:
    """(text, sub-tree) of every path and call in the expression, in order of first
    appearance, each once. Iterative: any depth."""
    found: dict[str, list] = {}
    work = [_tree(expr)]
    while work:
        node = work.pop()
        if not isinstance(node, list) or not node:
            continue
        tag = node[0]
        if tag == "path":
            found.setdefault(_path_text(node), node)
            continue
        if tag == "call":
            found.setdefault(render(node), node)
            children = node[2] if len(node) > 2 and isinstance(node[2], list) else []
        elif tag == "list":
            children = node[1] if len(node) > 1 and isinstance(node[1], list) else []
        elif tag in ("not", "neg"):
            children = node[1:2]
        elif tag in ("and", "or"):
            children = node[1:3]
        elif tag in ("cmp", "arith"):
            children = node[2:4]
        else:
            children = []
        work.extend(reversed(children))  # left to right
    return list(found.items())


def operand_values(expr: Expr | list, ctx: dict, limit: int = MAX_OPERANDS) -> dict[str, Any]:
    """The value of each operand (``operands``) in ``ctx``, the first ``limit`` of them."""
    return {text: evaluator.evaluate(tree, ctx) for text, tree in operands(expr)[:limit]}
