"""Syntax errors are classified by the table ``dsl.parser.SYNTAX_CLASSES``: every example
input of every class still lands in that class, with the message pinned, so a grammar
change that moves what the parser expects somewhere fails here instead of quietly
turning a helpful message into a generic one."""

from __future__ import annotations

import pytest

from dsl import parser
from dsl.compiler import compile_text
from dsl.errors import TextError

EXAMPLES = [(c.label, ex) for c in parser.SYNTAX_CLASSES for ex in c.examples]


def _error(example: str) -> tuple[int, str, str | None]:
    start, text = example.split(": ", 1)
    with pytest.raises(TextError) as err:
        parser._parse.__wrapped__(text, start)  # uncached: the real parse every time
    return err.value.offset, err.value.message, err.value.hint


@pytest.mark.parametrize("label, example", EXAMPLES)
def test_every_example_lands_in_its_own_class(label, example):
    start, text = example.split(": ", 1)
    assert parser.classify(text, start) == label


def test_every_class_has_examples_and_a_unique_label():
    labels = [c.label for c in parser.SYNTAX_CLASSES]
    assert len(set(labels)) == len(labels)
    assert [c.label for c in parser.SYNTAX_CLASSES if not c.examples] == []


def test_every_terminal_the_table_names_is_in_the_grammar():
    grammar = {t.name for t in parser._lark().terminals} | {"$END"}
    named = set(parser._DESCRIBE)
    for c in parser.SYNTAX_CLASSES:
        named |= c.found | c.expects_any | c.expects_all | (c.expects_only or frozenset())
    assert named - grammar == set()


# The first example of each class, as the user sees it: (offset, message, hint).
FIRST_MESSAGES = {
    "unknown-step": (0, "unknown step 'sned'", "did you mean 'send'?"),
    "assign-in-condition": (17, "'=' is not a comparison", "use '==' to compare values"),
    "double-equals": (26, "unexpected '=='", "use a single '=' to give a value"),
    "chained-comparison": (
        9,
        "comparisons cannot be chained",
        "write 'a < b and b < c' instead of 'a < b < c'",
    ),
    "expression-expected": (27, "expected an expression after '=='", None),
    "unit-expected": (
        6,
        "expected a unit after '2', found the end",
        "write e.g. '2 days' or '2d'; units: seconds, minutes, hours, days, weeks",
    ),
    "wait-duration-expected": (
        4,
        "expected a duration after 'wait', found the end",
        "write 'wait 2 days', or 'wait for EVENT within DURATION'",
    ),
    "duration-expected": (
        19,
        "expected a duration after 'within', found the end",
        "write e.g. '2 days' or '36h'",
    ),
    "event-expected": (
        8,
        "expected an event name after 'for', found the end",
        "event names look like 'order.placed'",
    ),
    "team-expected": (6, "expected a team name after 'notify', found the end", None),
    "experiment-expected": (
        5,
        "expected an experiment name after 'split', found the end",
        "write: split NAME: with one 'VARIANT N%:' block per variant below it",
    ),
    "template-expected": (4, "expected a template name after 'send', found the end", None),
    "notify-needs-with": (
        15,
        "notify needs 'with TEMPLATE'",
        "write: notify TEAM with TEMPLATE [with NAME=EXPR]",
    ),
    "missing-rpar": (5, "missing ')'", None),
    "missing-rsqb": (5, "missing ']'", None),
    "call-needs-parens": (
        18,
        "expected '(' after 'create_ticket', found the end",
        "write: call ACTIVITY(NAME=EXPR, ...) [as NAME]",
    ),
    "arguments-need-commas": (22, "unexpected 'b' after '1'", "separate arguments with ','"),
    "unexpected-after-operand": (
        5,
        "unexpected 'y' after 'x'",
        "join conditions with 'and' or 'or'",
    ),
    "after-the-end": (5, "unexpected 'now' after the end of the step", None),
    "unexpected-end": (5, "unexpected end of the step; expected '.' or '='", None),
    "unexpected": (6, "unexpected '1'; expected '.' or '='", None),
}


@pytest.mark.parametrize("cls", parser.SYNTAX_CLASSES, ids=lambda c: c.label)
def test_the_first_example_of_each_class_reads_as_pinned(cls):
    assert _error(cls.examples[0]) == FIRST_MESSAGES[cls.label]


@pytest.mark.parametrize(
    "example, expected",
    [
        # LALR merges the lookaheads of states with the same core: the parser's own
        # `expected` said "notify needs 'with TEMPLATE'" after `send TEMPLATE`, 'where' or
        # 'within' after a lone event name, and "missing ')'" for a list left open inside
        # parentheses. The classes read what this very parse would take instead.
        ("step: send welcome soon", (13, "unexpected 'soon'; expected 'with' or the end", None)),
        ("event: order.placed x", (13, "unexpected 'x' after the end of the event name", None)),
        ("expression: (x in [1, 2", (11, "missing ']'", None)),
    ],
)
def test_messages_follow_what_this_parse_would_take(example, expected):
    assert _error(example) == expected


def test_an_event_name_followed_by_a_keyword_is_a_problem_not_a_crash():
    """``trigger: order.placed within`` left the parser expecting nothing at all, and the
    message builder failed with IndexError: validate crashed instead of reporting."""
    rules = "journeys:\n  j:\n    trigger: order.placed within\n    steps:\n      - exit\n"
    result = compile_text(rules, "r.yaml", "tests/dsl/fixtures/templates")
    assert [p.render() for p in result.problems] == [
        "r.yaml:3:27: error: 'order.placed within' is not an event name\n"
        "    trigger: order.placed within\n"
        "                          ^\n"
        "hint: event names look like 'order.placed'"
    ]
