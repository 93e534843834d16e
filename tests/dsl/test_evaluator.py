"""Unit tests of dsl.evaluator: trees built by hand, every node, every null-safety rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsl import evaluator
from dsl.evaluator import ExpressionError, compile_expr, evaluate, truthy
from dsl.functions import FUNCTIONS, Function
from dsl.ir import Expr

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CTX = {
    "customer": {
        "orders_count": 0,
        "name": "Ann",
        "country": "FR",
        "marketing_opt_in": True,
        "vip": False,
        "lifetime_value": 320.5,
        "tags": ["new", "eu"],
        "address": {"city": "Lyon", "zip": "69001"},
        "signed_up_at": "2026-01-30T12:00:00Z",
        "renews_at": "2026-03-11T00:00:00Z",
        "one": 1,
        "flag": True,
    },
    "trigger": {"complaint_id": "cmp-7", "total": 40.5},
    "event": {"complaint_id": "cmp-7"},
    "vars": {"ticket": {"id": "T-1"}, "n": 3},
    "now": NOW,
}


def lit(v):
    return ["lit", v]


def c(*names):
    return ["path", "customer", list(names)]


def cmp(op, a, b):
    return ["cmp", op, a, b]


def arith(op, a, b):
    return ["arith", op, a, b]


def call(name, *args):
    return ["call", name, list(args)]


def both(tree, ctx=CTX):
    """Evaluate through the generated code and through the stack machine; they must agree."""
    fast = compile_expr(tree)(ctx)
    slow = evaluator._interpret(evaluator._linearize(tree), ctx)
    assert repr(fast) == repr(slow), (tree, fast, slow)
    return fast


# --------------------------------------------------------------------------- nodes


@pytest.mark.parametrize("value", [None, True, False, 0, -3, 2.5, "", 'it\'s "quoted"\n'])
def test_lit_returns_its_value(value):
    assert both(lit(value)) == value
    assert type(both(lit(value))) is type(value)


def test_list_builds_a_fresh_list_each_time():
    tree = ["list", [lit(1), c("name"), lit(None)]]
    first = both(tree)
    assert first == [1, "Ann", None]
    first.append("mutated")
    assert evaluate(tree, CTX) == [1, "Ann", None]


@pytest.mark.parametrize(
    "tree, want",
    [
        (c("orders_count"), 0),
        (c("address", "city"), "Lyon"),
        (["path", "trigger", ["complaint_id"]], "cmp-7"),
        (["path", "event", ["complaint_id"]], "cmp-7"),
        (["path", "var", ["ticket", "id"]], "T-1"),
        (["path", "var", ["n"]], 3),
        (c(), CTX["customer"]),
    ],
)
def test_path_reads_each_scope(tree, want):
    assert both(tree) == want


@pytest.mark.parametrize(
    "tree, ctx",
    [
        (c("missing"), CTX),
        (c("address", "missing"), CTX),
        (c("missing", "deeper"), CTX),
        (c("name", "length"), CTX),  # attribute of a str
        (c("tags", "first"), CTX),  # attribute of a list
        (c("orders_count", "x"), CTX),  # attribute of a number
        (c("orders_count"), {}),  # no customer at all
        (c("orders_count"), {"customer": None}),
        (c("orders_count"), {"customer": ["not", "a", "dict"]}),
        (["path", "event", ["complaint_id"]], {"event": None}),
        (["path", "var", ["ticket", "id"]], {"vars": {}}),
        (c(), {"customer": "text"}),
        (c(), {}),
    ],
)
def test_missing_or_non_dict_attribute_is_null(tree, ctx):
    assert both(tree, ctx) is None


def test_not_returns_a_boolean_by_truthiness():
    for value, want in [(None, True), (0, True), ("", True), ([], True), ({}, True), ("x", False)]:
        assert both(["not", ["path", "var", ["v"]]], {"vars": {"v": value}}) is want
    assert both(["not", c("missing")]) is True


def test_neg():
    assert both(["neg", lit(3)]) == -3
    assert both(["neg", c("lifetime_value")]) == -320.5
    assert both(["neg", lit(True)]) is None
    assert both(["neg", c("missing")]) is None
    assert both(["neg", lit("x")]) is None


@pytest.mark.parametrize(
    "tree, want",
    [
        (["and", lit(1), lit("x")], True),
        (["and", lit(1), lit("")], False),
        (["and", c("missing"), lit(True)], False),
        (["or", lit(0), lit("x")], True),
        (["or", c("missing"), lit(None)], False),
        (["or", ["list", []], c("tags")], True),
        (["and", cmp("==", lit(1), lit(1)), cmp("<", lit(1), lit(2))], True),
        (["or", cmp("==", lit(1), lit(2)), cmp(">", lit(1), lit(2))], False),
    ],
)
def test_and_or_return_booleans(tree, want):
    assert both(tree) is want


def test_and_or_short_circuit():
    # The right side would be null if evaluated; short-circuiting means it decides nothing,
    # and a failing function on the right never runs when the left decides.
    calls = []

    def spy(now, x):
        calls.append(x)
        return x

    FUNCTIONS["_spy"] = Function("_spy", ("any",), "any", spy, "test only")
    try:
        assert both(["and", lit(False), call("_spy", lit(1))]) is False
        assert both(["or", lit(True), call("_spy", lit(2))]) is True
        assert calls == []
        assert both(["and", lit(True), call("_spy", lit(3))]) is True
        assert calls == [3, 3]  # once by the generated code, once by the stack machine
    finally:
        del FUNCTIONS["_spy"]


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    "a, b, want",
    [
        (lit(1), lit(1), True),
        (lit(1), lit(1.0), True),
        (lit("a"), lit("a"), True),
        (lit("1"), lit(1), False),
        (lit(True), lit(1), False),  # bool never equals a number
        (lit(1), lit(True), False),
        (lit(False), lit(0), False),
        (c("one"), lit(True), False),
        (c("flag"), lit(1), False),
        (c("flag"), c("one"), False),
        (c("one"), c("flag"), False),
        (lit(True), lit(True), True),
        (c("flag"), lit(True), True),
        (c("missing"), lit(None), True),  # x == null is true when x is missing
        (lit(None), c("missing"), True),
        (c("missing"), c("also_missing"), True),
        (c("name"), lit(None), False),
        (c("orders_count"), lit(0), True),
        (lit(0), c("orders_count"), True),
        (c("tags"), ["list", [lit("new"), lit("eu")]], True),
        (c("address"), c("address"), True),
        (["path", "event", ["complaint_id"]], ["path", "trigger", ["complaint_id"]], True),
    ],
)
def test_equality(a, b, want):
    assert both(cmp("==", a, b)) is want
    assert both(cmp("!=", a, b)) is (not want)


@pytest.mark.parametrize(
    "a, b, lt",
    [
        (lit(1), lit(2), True),
        (lit(2.5), lit(2), False),
        (lit("a"), lit("b"), True),
        (c("lifetime_value"), lit(500), True),
        (lit(500), c("lifetime_value"), False),
    ],
)
def test_ordering_of_numbers_and_strings(a, b, lt):
    assert both(cmp("<", a, b)) is lt
    assert both(cmp(">=", a, b)) is (not lt)
    assert both(cmp(">", b, a)) is lt
    assert both(cmp("<=", b, a)) is (not lt)


@pytest.mark.parametrize(
    "a, b",
    [
        (c("missing"), lit(1)),
        (lit(1), c("missing")),
        (lit(None), lit(None)),
        (lit("1"), lit(2)),
        (lit(2), lit("1")),
        (lit(True), lit(0)),
        (lit(0), lit(True)),
        (lit(True), lit(False)),
        (c("flag"), c("vip")),
        (c("tags"), c("tags")),
        (c("address"), lit("x")),
        (c("name"), c("orders_count")),
    ],
)
@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_ordering_with_null_or_mismatched_types_is_false(op, a, b):
    assert both(cmp(op, a, b)) is False


@pytest.mark.parametrize(
    "needle, hay, want_in, want_not_in",
    [
        (c("country"), ["list", [lit("DE"), lit("FR")]], True, False),
        (c("country"), ["list", [lit("DE"), lit(None)]], False, True),
        (c("missing"), ["list", [lit("DE"), lit(None)]], True, False),
        (lit("new"), c("tags"), True, False),
        (lit("old"), c("tags"), False, True),
        (lit(1), ["list", [lit(1.0), lit(2)]], True, False),
        (lit(True), ["list", [lit(1), lit(2)]], False, True),  # bool is not a number
        (lit(1), ["list", [lit(True)]], False, True),
        (lit(True), ["list", [lit(True)]], True, False),
        (c("one"), ["list", [lit(True), lit(1)]], True, False),
        (c("flag"), ["list", [lit(1), lit(2)]], False, True),
        (lit(5), ["list", []], False, True),
        (lit("ny"), lit("Lyon"), False, True),
        (lit("yon"), lit("Lyon"), True, False),
        (lit("yon"), c("address", "city"), True, False),
        (lit(1), lit("1"), False, True),  # a str container, a non-str needle
        (lit("city"), c("address"), True, False),  # dict: keys
        (lit("Lyon"), c("address"), False, True),
        (c("tags"), c("address"), False, True),  # unhashable needle, no crash
        # null or non-container right side: false both ways
        (lit("x"), c("missing"), False, False),
        (lit("x"), lit(None), False, False),
        (lit(1), lit(1), False, False),
        (lit(True), c("flag"), False, False),
        (lit(None), lit(None), False, False),
    ],
)
def test_in_and_not_in(needle, hay, want_in, want_not_in):
    assert both(cmp("in", needle, hay)) is want_in
    assert both(cmp("not in", needle, hay)) is want_not_in


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    "op, a, b, want",
    [
        ("+", lit(1), lit(2), 3),
        ("+", lit(1), lit(0.5), 1.5),
        ("+", lit("ab"), lit("cd"), "abcd"),
        ("+", c("tags"), ["list", [lit("x")]], ["new", "eu", "x"]),
        ("-", lit(5), lit(7), -2),
        ("*", lit(4), lit(2.5), 10.0),
        ("/", lit(7), lit(2), 3.5),
        ("/", lit(6), lit(3), 2.0),
        ("+", ["path", "trigger", ["total"]], lit(1), 41.5),
    ],
)
def test_arithmetic(op, a, b, want):
    got = both(arith(op, a, b))
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    "op, a, b",
    [
        ("+", c("missing"), lit(1)),
        ("+", lit(1), lit(None)),
        ("+", lit("a"), lit(1)),
        ("+", lit(1), lit("a")),
        ("+", lit(True), lit(1)),
        ("+", c("tags"), lit("x")),
        ("+", c("address"), c("address")),
        ("-", lit("a"), lit("b")),
        ("-", c("tags"), c("tags")),
        ("*", lit("ab"), lit(3)),  # no string repetition
        ("*", c("tags"), lit(2)),
        ("*", lit(False), lit(2)),
        ("/", lit(1), lit(0)),  # division by zero
        ("/", lit(1), lit(0.0)),
        ("/", lit(0), lit(0)),
        ("/", lit(1), lit(False)),
        ("*", lit(1e308), lit(10)),  # overflows to inf
        ("-", lit(-1e308), lit(1e308)),
        ("/", lit(10**400), lit(3)),  # too large for a float: OverflowError
        ("+", lit(10**400), lit(1.5)),
        ("*", lit(float("inf")), lit(0)),  # nan
    ],
)
def test_arithmetic_with_null_bad_types_or_overflow_is_null(op, a, b):
    assert both(arith(op, a, b)) is None


def test_big_integers_stay_exact():
    assert both(arith("*", lit(10**30), lit(10**30))) == 10**60
    assert both(cmp(">", lit(10**400), lit(1.5))) is True


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    "tree, want",
    [
        (call("len", c("tags")), 2),
        (call("len", c("name")), 3),
        (call("len", c("address")), 2),
        (call("len", c("orders_count")), None),
        (call("len", c("missing")), None),
        (call("lower", c("name")), "ann"),
        (call("lower", lit(1)), None),
        (call("upper", c("name")), "ANN"),
        (call("upper", c("missing")), None),
        (call("days_since", c("signed_up_at")), 30.0),
        (call("days_since", lit("2026-02-28T12:00:00")), 1.0),  # naive means UTC
        (call("days_since", lit("not a date")), None),
        (call("days_since", lit(True)), None),
        (call("hours_since", c("signed_up_at")), 720.0),
        (call("days_until", c("renews_at")), 9.5),
        (call("days_since", lit(NOW.timestamp() - 86400)), 1.0),  # epoch seconds
        (call("now"), "2026-03-01T12:00:00Z"),
        (call("default", c("missing"), lit("x")), "x"),
        (call("default", c("name"), lit("x")), "Ann"),
        (call("default", c("vip"), lit(True)), False),
        (call("round", lit(2.567), lit(2)), 2.57),
        (call("round", lit(2.5)), 2),
        (call("round", lit("2")), None),
        (call("round", lit(12345), lit(-2)), 12300),
        # would compute 10**(10**9) and never return
        (call("round", lit(12345), lit(-(10**9))), None),
        (call("abs", lit(-4)), 4),
        (call("abs", lit(True)), None),
        (call("min", lit(3), lit(2.5)), 2.5),
        (call("min", lit(3), lit(None)), None),
        (call("max", lit(3), lit(2.5)), 3),
        (call("max", lit("a"), lit(1)), None),
        (call("contains", c("tags"), lit("eu")), True),
        (call("contains", c("name"), lit("nn")), True),
        (call("contains", c("missing"), lit("x")), False),
        (call("starts_with", c("name"), lit("An")), True),
        (call("starts_with", c("name"), lit(1)), False),
    ],
)
def test_each_function(tree, want):
    got = both(tree)
    assert got == want and type(got) is type(want)


def test_every_library_function_is_covered():
    covered = {"len", "lower", "upper", "days_since", "hours_since", "days_until", "now"}
    covered |= {"default", "round", "abs", "min", "max", "contains", "starts_with"}
    assert set(FUNCTIONS) == covered


@pytest.mark.parametrize("name", ["days_since", "hours_since", "days_until"])
def test_functions_needing_now_are_null_without_it(name):
    ctx = {k: v for k, v in CTX.items() if k != "now"}
    assert both(call(name, c("signed_up_at")), ctx) is None
    assert both(call("now"), ctx) is None
    # only that call is null: the rest of the expression still works
    tree = ["or", cmp(">", call(name, c("signed_up_at")), lit(1)), c("marketing_opt_in")]
    assert both(tree, ctx) is True


def test_an_exception_inside_a_function_is_null_for_that_call_only(monkeypatch):
    def boom(now, x):
        raise RuntimeError("inside a function")

    monkeypatch.setitem(FUNCTIONS, "boom", Function("boom", ("any",), "any", boom, "raises"))
    assert evaluate(call("boom", lit(1)), CTX) is None
    tree = ["list", [call("boom", lit(1)), c("name"), cmp("==", call("boom", lit(2)), lit(None))]]
    assert evaluate(tree, CTX) == [None, "Ann", True]


# --------------------------------------------------------------------------- robustness


class Weird:
    """A value no JSON decoder makes: every operation on it raises."""

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __bool__(self):
        raise RuntimeError("bool")

    __hash__ = None


@pytest.mark.parametrize(
    "tree",
    [
        cmp("==", c("w"), lit(1)),
        cmp("==", c("w"), lit("x")),
        cmp("in", c("w"), ["list", [lit("a")]]),
        ["not", c("w")],
        ["and", c("w"), lit(True)],
        call("len", c("w")),
    ],
)
def test_weird_values_never_raise(tree):
    ctx = {"customer": {"w": Weird()}, "now": NOW}
    assert evaluate(tree, ctx) in (None, False, True)


@pytest.mark.parametrize("ctx", [{}, None, [], "ctx", {"customer": 5, "vars": [], "now": "x"}])
def test_any_context_is_fine(ctx):
    tree = ["and", cmp("==", c("orders_count"), lit(None)), ["not", ["path", "var", ["v"]]]]
    assert evaluate(tree, ctx) is True
    assert evaluate(call("days_since", c("signed_up_at")), ctx) is None


def test_truthy():
    for falsy in (None, False, 0, 0.0, "", [], {}):
        assert truthy(falsy) is False
    for true in (True, 1, -1, 0.1, "0", "false", [None], {"a": None}):
        assert truthy(true) is True
    assert truthy(Weird()) is False


def test_deep_not_does_not_blow_the_stack():
    tree = lit(True)
    for _ in range(5000):
        tree = ["not", tree]
    assert both(tree) is True
    assert both(["not", tree]) is False


def test_deep_and_or_arith_and_paths():
    chain = lit(1)
    for i in range(3000):
        chain = arith("+", chain, lit(1)) if i % 2 else ["neg", chain]
    assert isinstance(both(chain), int)
    conj = cmp("==", c("name"), lit("Ann"))
    for _ in range(3000):
        conj = ["and", conj, ["or", lit(False), c("marketing_opt_in")]]
    assert both(conj) is True
    nested = {"v": 7}
    for _ in range(300):
        nested = {"a": nested}
    assert both(["path", "var", ["n"] + ["a"] * 300 + ["v"]], {"vars": {"n": nested}}) == 7
    assert both(["path", "var", ["n"] + ["a"] * 301], {"vars": {"n": nested}}) is None


def test_just_under_and_over_the_codegen_depth_agree():
    for depth in (evaluator.CODEGEN_MAX_DEPTH - 1, evaluator.CODEGEN_MAX_DEPTH + 1):
        tree = c("orders_count")
        for _ in range(depth - 1):
            tree = ["not", tree]
        assert both(tree) is (depth % 2 == 0)


def test_shallow_trees_become_generated_code_deep_ones_do_not():
    assert compile_expr(cmp("==", c("orders_count"), lit(0))).__name__ == "_expr"
    deep = lit(1)
    for _ in range(evaluator.CODEGEN_MAX_DEPTH + 1):
        deep = ["neg", deep]
    assert compile_expr(deep).__name__ != "_expr"


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "text",
    [
        "'); import os; os.system('echo pwned') #",
        '" + __import__("os").getcwd() + "',
        "\\'; raise SystemExit; '",
        "\x00\ud800\n\r\t",
        "{ctx}",
    ],
)
def test_literals_and_names_are_never_code(text):
    assert both(lit(text)) == text
    assert both(c(text), {"customer": {text: 42}}) == 42
    assert both(cmp("in", lit(text), ["list", [lit(text)]])) is True
    assert both(cmp("==", c(text), lit(text)), {"customer": {text: text}}) is True


def test_generated_code_has_no_builtins():
    fn = compile_expr(cmp("==", c("orders_count"), lit(0)))
    assert fn.__globals__["__builtins__"] == {}


def test_cache_returns_the_same_callable():
    tree = cmp("==", c("orders_count"), lit(0))
    assert compile_expr(tree) is compile_expr([*tree])
    expr = Expr("customer.orders_count == 0", tree)
    assert compile_expr(expr) is compile_expr(tree)
    assert evaluate(expr, CTX) is True
    # 1, 1.0 and true are different literals
    assert compile_expr(lit(1)) is not compile_expr(lit(1.0))
    assert evaluate(lit(1.0), {}).__class__ is float
    assert evaluate(lit(True), {}) is True


@pytest.mark.parametrize(
    "tree, message",
    [
        (["bogus", 1], "unknown expression node 'bogus'"),
        ([], "malformed expression node"),
        ("lit", "malformed expression node"),
        (["lit", [1]], "literal must be str, number, bool or null"),
        (["lit"], "malformed lit"),
        (["path", "profile", ["x"]], "malformed path"),
        (["path", "var", []], "malformed path"),
        (["path", "customer", [1]], "malformed path"),
        (["cmp", "===", lit(1), lit(1)], "malformed cmp"),
        (["arith", "%", lit(1), lit(1)], "malformed arith"),
        (["call", "nope", []], "unknown function 'nope'"),
        (["call", "len", []], "len() takes 1..1 arguments, got 0"),
        (["call", "round", [lit(1), lit(2), lit(3)]], "round() takes 1..2 arguments, got 3"),
        (["and", lit(1)], "malformed and"),
        (["not", ["lit", {1, 2}]], "expression trees hold only lists and JSON scalars"),
    ],
)
def test_malformed_trees_raise_expression_error(tree, message):
    with pytest.raises(ExpressionError) as info:
        compile_expr(tree)
    assert str(info.value).startswith(message)


def test_big_integer_arithmetic_stays_bounded():
    # `set x = x * x` forty times would make a number of ~10**13 digits, each product
    # slower than the last; a result past 4096 bits is null, so this finishes at once.
    square = ["arith", "*", ["path", "var", ["x"]], ["path", "var", ["x"]]]
    x = 10**18
    for _ in range(40):
        x = evaluate(square, {"vars": {"x": x}})
    assert x is None
    assert evaluate(["arith", "*", ["lit", 2**2000], ["lit", 2**2000]], {}) == 2**4000
    assert evaluate(["arith", "*", ["lit", 2**2100], ["lit", 2**2100]], {}) is None


def test_string_concatenation_stays_bounded():
    double = ["arith", "+", ["path", "var", ["x"]], ["path", "var", ["x"]]]
    x = "abcd"
    for _ in range(40):  # 4 * 2**40 characters, unbounded
        x = evaluate(double, {"vars": {"x": x}})
    assert x is None
    assert evaluate(double, {"vars": {"x": "ab"}}) == "abab"
