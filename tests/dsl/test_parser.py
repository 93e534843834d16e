"""Every step and expression construct → the IR tree documented in dsl/ir.py."""

from __future__ import annotations

import pytest

from dsl import ir
from dsl.compiler import parse_expression
from dsl.errors import RulesError

from .frontend_support import compile_steps, rendered


@pytest.mark.parametrize(
    "src, tree",
    [
        ("1", ["lit", 1]),
        ("2.5", ["lit", 2.5]),
        ('"a\\"b"', ["lit", 'a"b']),
        ("'it''s'", None),  # YAML-style doubling is not a string escape here
        ("'x'", ["lit", "x"]),
        ("true", ["lit", True]),
        ("false", ["lit", False]),
        ("null", ["lit", None]),
        ("[1, 'a', null]", ["list", [["lit", 1], ["lit", "a"], ["lit", None]]]),
        ("[]", ["list", []]),
        ("customer.a.b", ["path", "customer", ["a", "b"]]),
        ("customer", ["path", "customer", []]),
        ("trigger.id", ["path", "trigger", ["id"]]),
        ("event.total", ["path", "event", ["total"]]),
        ("ticket.id", ["path", "var", ["ticket", "id"]]),
        ("not x", ["not", ["path", "var", ["x"]]]),
        ("-x", ["neg", ["path", "var", ["x"]]]),
        ("a and b", ["and", ["path", "var", ["a"]], ["path", "var", ["b"]]]),
        (
            "a or b and c",
            ["or", ["path", "var", ["a"]], ["and", ["path", "var", ["b"]], ["path", "var", ["c"]]]],
        ),
        (
            "(a or b) and c",
            ["and", ["or", ["path", "var", ["a"]], ["path", "var", ["b"]]], ["path", "var", ["c"]]],
        ),
        ("x == 1", ["cmp", "==", ["path", "var", ["x"]], ["lit", 1]]),
        ("x != 1", ["cmp", "!=", ["path", "var", ["x"]], ["lit", 1]]),
        ("x < 1", ["cmp", "<", ["path", "var", ["x"]], ["lit", 1]]),
        ("x <= 1", ["cmp", "<=", ["path", "var", ["x"]], ["lit", 1]]),
        ("x > 1", ["cmp", ">", ["path", "var", ["x"]], ["lit", 1]]),
        ("x >= 1", ["cmp", ">=", ["path", "var", ["x"]], ["lit", 1]]),
        ("x in [1]", ["cmp", "in", ["path", "var", ["x"]], ["list", [["lit", 1]]]]),
        ("x not in [1]", ["cmp", "not in", ["path", "var", ["x"]], ["list", [["lit", 1]]]]),
        ("1 + 2 * 3", ["arith", "+", ["lit", 1], ["arith", "*", ["lit", 2], ["lit", 3]]]),
        ("1 - 2 - 3", ["arith", "-", ["arith", "-", ["lit", 1], ["lit", 2]], ["lit", 3]]),
        ("6 / 2", ["arith", "/", ["lit", 6], ["lit", 2]]),
        ("len(x)", ["call", "len", [["path", "var", ["x"]]]]),
        ("now()", ["call", "now", []]),
        ("round(x, 2)", ["call", "round", [["path", "var", ["x"]], ["lit", 2]]]),
        ("not a == 1", ["not", ["cmp", "==", ["path", "var", ["a"]], ["lit", 1]]]),
    ],
)
def test_expression_trees(src, tree):
    if tree is None:
        with pytest.raises(RulesError):
            parse_expression(src)
        return
    expr = parse_expression(src)
    assert expr == ir.Expr(src, tree)


def test_every_step_kind_compiles_to_its_ir():
    result = compile_steps(
        "- send welcome with discount=10, code='A1'",
        "- notify support with alert",
        "- wait 30s",
        "- wait 1 week",
        '- call create_ticket(priority="urgent", complaint=trigger.id) as ticket',
        "- set customer.open_ticket = ticket.id",
        "- set n = len(customer.orders)",
        "- if n > 2:\n    - send welcome\n  else:\n    - send alert",
        "- wait for order.shipped where event.id == trigger.id within 36 hours:\n"
        "    received:\n      - send alert with total=event.total\n"
        "    timeout:\n      - exit",
    )
    assert result.problems == [], rendered(result)
    steps = result.plan.journeys["j"].steps
    assert [s.kind for s in steps] == [
        "send", "notify", "wait", "wait", "call", "set", "set", "if", "wait_for",
    ]  # fmt: skip
    send, notify, w1, w2, call, set_c, set_v, if_, wait_for = steps
    assert send.template == "welcome"
    assert send.args == {
        "discount": ir.Expr("10", ["lit", 10]),
        "code": ir.Expr("'A1'", ["lit", "A1"]),
    }
    assert send.origin == ir.Origin("r.yaml", 8, 9)
    assert (notify.team, notify.address, notify.template) == (
        "support",
        "support@acme.test",
        "alert",
    )
    assert (w1.seconds, w2.seconds) == (30, 604800)
    assert call.activity == "create_ticket" and call.bind == "ticket"
    assert (call.timeout_seconds, call.max_attempts) == (30, 5)
    assert call.args["complaint"].tree == ["path", "trigger", ["id"]]
    assert (set_c.target, set_c.name, set_c.value.tree) == (
        "customer",
        "open_ticket",
        ["path", "var", ["ticket", "id"]],
    )
    assert (set_v.target, set_v.name) == ("var", "n")
    assert if_.cond.tree == ["cmp", ">", ["path", "var", ["n"]], ["lit", 2]]
    assert [s.kind for s in if_.then] == ["send"] and [s.kind for s in if_.else_] == ["send"]
    assert (wait_for.event, wait_for.seconds) == ("order.shipped", 129600)
    assert wait_for.where.src == "event.id == trigger.id"
    assert wait_for.received[0].args["total"].tree == ["path", "event", ["total"]]
    assert [s.kind for s in wait_for.timeout] == ["exit"]
    assert wait_for.origin == ir.Origin("r.yaml", 19, 9)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1 second", 1), ("30 seconds", 30), ("15 minutes", 900), ("1 minute", 60),
        ("36 hours", 129600), ("1 hour", 3600), ("2 days", 172800), ("1 day", 86400),
        ("1 week", 604800), ("2 weeks", 1209600), ("30s", 30), ("15m", 900), ("36h", 129600),
        ("2d", 172800), ("1w", 604800), ("1.5 hours", 5400),
    ],
)  # fmt: skip
def test_durations(text, seconds):
    result = compile_steps(f"- wait {text}")
    assert result.problems == [], rendered(result)
    assert result.plan.journeys["j"].steps[0].seconds == seconds


@pytest.mark.parametrize(
    "text, mode, seconds",
    [("never", "never", 0), ("always", "always", 0), ("after 30 days", "after", 2592000)],
)
def test_reentry(text, mode, seconds):
    result = compile_steps("- exit", extra=f"    reentry: {text}")
    assert result.problems == [], rendered(result)
    assert result.plan.journeys["j"].reentry == ir.Reentry(mode, seconds)


def test_journey_fields_and_hash():
    result = compile_steps(
        "- exit",
        when="customer.opt_in and len(customer.email) > 0",
        extra="    description: hi\n    goal: order.refunded\n    key: trigger.order_id",
    )
    j = result.plan.journeys["j"]
    assert (str(j.trigger), j.goal, j.description) == ("order.placed", "order.refunded", "hi")
    assert j.when.src == "customer.opt_in and len(customer.email) > 0"
    assert j.key.tree == ["path", "trigger", ["order_id"]]
    assert j.origin == ir.Origin("r.yaml", 5, 3)
    assert j.hash == j.compute_hash() and len(j.hash) == 16
    # The plan survives the JSON round trip the workflows use.
    assert ir.plan_from_dict(ir.to_dict(result.plan)) == result.plan


def test_hash_ignores_positions_but_not_content():
    a = compile_steps("- wait 2 days").plan.journeys["j"].hash
    b = compile_steps("- wait 2d").plan.journeys["j"].hash
    c = compile_steps("- wait 3 days").plan.journeys["j"].hash
    moved = compile_steps("- wait 2 days", extra="    description: x").plan.journeys["j"]
    assert a == b != c
    assert moved.hash != a  # description is content


def test_variables_bound_on_every_path_are_known_after_the_block():
    result = compile_steps(
        "- if customer.vip:\n    - set level = 1\n  else:\n    - set level = 2",
        "- send welcome with level=level",
    )
    assert result.problems == [], rendered(result)


def test_variable_bound_on_one_branch_only_is_unknown_after():
    result = compile_steps(
        "- if customer.vip:\n    - set level = 1", "- send welcome with level=level"
    )
    assert [p.message for p in result.problems] == ["unknown name 'level'"]


def test_branch_that_exits_does_not_count():
    result = compile_steps(
        "- if customer.vip:\n    - exit\n  else:\n    - set level = 2",
        "- send welcome with level=level",
    )
    assert result.problems == [], rendered(result)
