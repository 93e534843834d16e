"""Property tests of dsl.evaluator: random trees over random JSON never raise, and on
well-typed trees the generated code agrees with a plain tree-walking reference."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import evaluator
from dsl.functions import FUNCTIONS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMES = ["a", "b", "n", "s", "tags", "at"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- any tree

# A small domain, drawn most of the time, so the same values meet often (bool vs number,
# "a" in "a", 0 as a divisor); the rest reaches huge, non-finite and odd values.
small = st.sampled_from([None, True, False, 0, 1, -1, 2, 0.0, 1.0, 2.5, "a", "", "DE", "aDE"])
scalars = st.one_of(
    small,
    small,
    small,
    small,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=4),
    ),
    max_leaves=12,
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "customer": json_values,
        "trigger": json_values,
        "event": json_values,
        "vars": json_values,
        "now": st.sampled_from([NOW, None, "not a time"]),
    },
)

leaves = st.one_of(
    st.builds(lambda v: ["lit", v], scalars),
    st.builds(
        lambda scope, names: ["path", scope, names],
        st.sampled_from(["customer", "trigger", "event"]),
        st.lists(st.sampled_from(NAMES), max_size=3),
    ),
    st.builds(
        lambda names: ["path", "var", names],
        st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
    ),
)


def _calls(inner):
    def build(name, args):
        lo, hi = FUNCTIONS[name].arity
        return ["call", name, (args * hi)[:hi] if args else [["lit", None]] * lo]

    return st.builds(build, st.sampled_from(sorted(FUNCTIONS)), st.lists(inner, max_size=2))


def _extend(inner):
    return st.one_of(
        st.builds(lambda items: ["list", items], st.lists(inner, max_size=3)),
        st.builds(lambda t, e: [t, e], st.sampled_from(["not", "neg"]), inner),
        st.builds(lambda t, a, b: [t, a, b], st.sampled_from(["and", "or"]), inner, inner),
        st.builds(
            lambda op, a, b: ["cmp", op, a, b],
            st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"]),
            inner,
            inner,
        ),
        st.builds(
            lambda op, a, b: ["arith", op, a, b],
            st.sampled_from(["+", "-", "*", "/"]),
            inner,
            inner,
        ),
        _calls(inner),
    )


trees = st.recursive(leaves, _extend, max_leaves=25)


def jsonish(value) -> bool:
    if value is None or value.__class__ in (bool, int, float, str):
        return True
    if value.__class__ is list:
        return all(jsonish(v) for v in value)
    if value.__class__ is dict:
        return all(k.__class__ is str and jsonish(v) for k, v in value.items())
    return False


@SETTINGS
@given(trees, contexts)
def test_random_trees_never_raise_and_return_json(tree, ctx):
    fn = evaluator.compile_expr(tree)
    got = fn(ctx)
    assert jsonish(got)
    # the generated code and the stack machine it falls back on agree, edge cases included
    slow = evaluator._interpret(evaluator._linearize(tree), ctx)
    assert repr(got) == repr(slow)


@SETTINGS
@given(trees)
def test_random_trees_on_an_empty_context(tree):
    assert jsonish(evaluator.evaluate(tree, {}))


# The shapes the code generator inlines (a comparison with a literal or a literal list on
# one side), exhaustively over a small domain: there the inlined code and the general
# helpers could differ, and random trees meet those corners too rarely.
CMP_OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
TINY = [None, True, False, 0, 1, 1.0, "a", "", "ab"]


def test_inlined_comparisons_agree_with_the_helpers():
    lits = [["lit", v] for v in TINY]
    lists = [
        ["list", [["lit", v] for v in items]]
        for n in range(3)
        for items in product(TINY[:6], repeat=n)
    ]
    checked = 0
    for op, literal, value, flip in product(CMP_OPS, lits + lists, TINY, (False, True)):
        ctx = {"customer": {"v": value}}
        for other in (["lit", value], ["path", "customer", ["v"]]):
            tree = ["cmp", op, literal, other] if flip else ["cmp", op, other, literal]
            got = evaluator.compile_expr(tree)(ctx)
            slow = evaluator._interpret(evaluator._linearize(tree), ctx)
            assert got.__class__ is bool and got is slow, (tree, got, slow)
            checked += 1
    assert checked > 10_000


# --------------------------------------------------------------------------- well-typed trees
# Numbers, strings and booleans kept apart, no division by an expression, no null: here
# the language is plain Python, so a naive recursive interpreter is the reference.

CUSTOMER = {"n": 7, "x": -2.5, "s": "Lyon", "t": "ab", "b": True, "f": False}

num_leaves = st.one_of(
    st.builds(lambda v: ["lit", v], st.integers(-1000, 1000)),
    st.builds(lambda v: ["lit", v], st.floats(-1000, 1000, allow_nan=False)),
    st.sampled_from([["path", "customer", ["n"]], ["path", "customer", ["x"]]]),
)
str_leaves = st.one_of(
    st.builds(lambda v: ["lit", v], st.text(alphabet="abLyon'\"\\", max_size=4)),
    st.sampled_from([["path", "customer", ["s"]], ["path", "customer", ["t"]]]),
)
bool_leaves = st.one_of(
    st.builds(lambda v: ["lit", v], st.booleans()),
    st.sampled_from([["path", "customer", ["b"]], ["path", "customer", ["f"]]]),
)


def num_tree(depth):
    if depth == 0:
        return num_leaves
    sub = num_tree(depth - 1)
    return st.one_of(
        num_leaves,
        st.builds(lambda op, a, b: ["arith", op, a, b], st.sampled_from(["+", "-", "*"]), sub, sub),
        st.builds(
            lambda a, d: ["arith", "/", a, ["lit", d]],
            sub,
            st.integers(1, 9) | st.integers(-9, -1),
        ),
        st.builds(lambda a: ["neg", a], sub),
        st.builds(lambda a: ["call", "abs", [a]], sub),
        st.builds(lambda a, b: ["call", "max", [a, b]], sub, sub),
    )


def str_tree(depth):
    if depth == 0:
        return str_leaves
    sub = str_tree(depth - 1)
    return st.one_of(
        str_leaves,
        st.builds(lambda a, b: ["arith", "+", a, b], sub, sub),
        st.builds(lambda f, a: ["call", f, [a]], st.sampled_from(["lower", "upper"]), sub),
    )


def bool_tree(depth):
    if depth == 0:
        return bool_leaves
    sub = bool_tree(depth - 1)
    nums, strs = num_tree(min(depth, 2)), str_tree(min(depth, 2))
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    return st.one_of(
        bool_leaves,
        st.builds(lambda a: ["not", a], sub),
        st.builds(lambda t, a, b: [t, a, b], st.sampled_from(["and", "or"]), sub, sub),
        st.builds(lambda op, a, b: ["cmp", op, a, b], ops, nums, nums),
        st.builds(lambda op, a, b: ["cmp", op, a, b], ops, strs, strs),
        st.builds(
            lambda op, a, items: ["cmp", op, a, ["list", items]],
            st.sampled_from(["in", "not in"]),
            strs,
            st.lists(strs, max_size=3),
        ),
        st.builds(
            lambda op, a, b: ["cmp", op, a, b], st.sampled_from(["in", "not in"]), strs, strs
        ),
    )


def reference(node):
    """The obvious meaning of a well-typed tree, by recursion over the tree."""
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "list":
        return [reference(e) for e in node[1]]
    if tag == "path":
        return CUSTOMER[node[2][0]]
    if tag == "not":
        return not reference(node[1])
    if tag == "neg":
        return -reference(node[1])
    if tag == "and":
        return bool(reference(node[1]) and reference(node[2]))
    if tag == "or":
        return bool(reference(node[1]) or reference(node[2]))
    if tag == "call":
        args = [reference(e) for e in node[2]]
        return {"abs": abs, "max": max, "lower": str.lower, "upper": str.upper}[node[1]](*args)
    a, b = reference(node[2]), reference(node[3])
    return {
        "==": lambda: a == b,
        "!=": lambda: a != b,
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "in": lambda: a in b,
        "not in": lambda: a not in b,
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
    }[node[1]]()


def same(got, want) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return got == want or (math.isnan(got) and math.isnan(want))
    return got == want and type(got) is type(want)


@SETTINGS
@given(st.one_of(bool_tree(4), num_tree(3), str_tree(3)))
def test_generated_code_agrees_with_a_reference_interpreter(tree):
    want = reference(tree)
    got = evaluator.evaluate(tree, {"customer": CUSTOMER, "now": NOW})
    assert same(got, want), (tree, got, want)
