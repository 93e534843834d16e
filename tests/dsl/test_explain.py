"""dsl.explain: the operands an expression reads (what `lifecycle why` shows beside a
`when`), their values, and the tree rendered back as expression text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsl.compiler import parse_expression
from dsl.explain import MAX_OPERANDS, operand_values, operands, render

NOW = datetime(2030, 1, 10, tzinfo=UTC)


def names(text: str) -> list[str]:
    return [name for name, _ in operands(parse_expression(text))]


def test_paths_in_order_of_first_appearance_each_once():
    text = 'customer.plan == "gold" and trigger.total > 50 or customer.plan == "vip"'
    assert names(text) == ["customer.plan", "trigger.total"]


def test_a_call_is_an_operand_with_its_arguments_beside_it():
    text = "days_since(customer.last_order_at) > 30 and len(customer.tags) > 0"
    assert names(text) == [
        "days_since(customer.last_order_at)",
        "customer.last_order_at",
        "len(customer.tags)",
        "customer.tags",
    ]
    assert names("now() > customer.renewal_at") == ["now()", "customer.renewal_at"]


def test_values_are_what_the_evaluator_reads_a_missing_one_is_null():
    expr = parse_expression(
        'customer.plan == "gold" and days_since(customer.last_order_at) > 30 and trigger.x.y'
    )
    ctx = {
        "customer": {"plan": "silver", "last_order_at": "2030-01-01T00:00:00Z"},
        "trigger": {},
        "now": NOW,
    }
    assert operand_values(expr, ctx) == {
        "customer.plan": "silver",
        "days_since(customer.last_order_at)": 9.0,
        "customer.last_order_at": "2030-01-01T00:00:00Z",
        "trigger.x.y": None,
    }


def test_at_most_max_operands_are_given():
    text = " or ".join(f"customer.f{n}" for n in range(MAX_OPERANDS + 5))
    ctx = {"customer": {"f0": 1}}
    values = operand_values(parse_expression(text), ctx)
    assert list(values) == [f"customer.f{n}" for n in range(MAX_OPERANDS)]
    assert values["customer.f0"] == 1


@pytest.mark.parametrize(
    "text",
    [
        'customer.plan == "gold" and trigger.total > 50',
        "not (customer.a or customer.b) and customer.c",
        "(customer.a + 1) * 2 > -customer.b",
        "customer.a - (customer.b - customer.c) >= 0",
        '"x" in customer.tags and customer.y not in [1, 2.5, null, true]',
        "default(customer.n, 0) == 0",
        "not customer.a == 1",
    ],
)
def test_render_gives_text_that_parses_to_the_same_tree(text):
    tree = parse_expression(text).tree
    assert parse_expression(render(tree)).tree == tree
