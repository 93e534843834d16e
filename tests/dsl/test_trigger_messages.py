"""Validation messages for triggers, exit_when and else if (CONTRACT.md §7), pinned in full."""

from __future__ import annotations

import pytest

from dsl.compiler import compile_text


def rendered(text: str) -> str:
    result = compile_text(text, "r.yaml", "/nonexistent-templates")
    return "\n".join(p.render() for p in result.problems)


CASES = [
    (
        "no order.placed for",
        "r.yaml:3:33: error: not a trigger: expected a duration after 'for', found the end\n    trigger: no order.placed for\n                                ^\nhint: write e.g. '2 days' or '36h'",
    ),
    (
        "on customer.renewal_at at 25:00",
        "r.yaml:3:40: error: '25:00' is not a time of day\n    trigger: on customer.renewal_at at 25:00\n                                       ^\nhint: write HH:MM, from 00:00 to 23:59",
    ),
    (
        "on trigger.renewal_at",
        "r.yaml:3:17: error: a date trigger reads a customer field\n    trigger: on trigger.renewal_at\n                ^\nhint: write e.g. 'on customer.renewal_at'",
    ),
    (
        "entering trigger.total > 1",
        "r.yaml:3:23: error: 'entering' reads customer fields only, not 'trigger'\n    trigger: entering trigger.total > 1\n                      ^\nhint: write a condition over customer.*",
    ),
    (
        "every year on customer.birthday at 9",
        "r.yaml:3:49: error: not a trigger: unexpected '9'; expected a time of day (HH:MM)\n    trigger: every year on customer.birthday at 9\n                                                ^\nhint: a trigger is an event name (order.placed), 'no EVENT for DURATION', 'every year on customer.FIELD [at HH:MM]', 'on customer.FIELD [- DURATION] [at HH:MM]' or 'entering EXPR'",
    ),
    (
        "no order.placed for 0 days",
        "r.yaml:3:34: error: a duration must be longer than zero\n    trigger: no order.placed for 0 days\n                                 ^",
    ),
    (
        "[a.b, a.b]",
        "r.yaml:3:15: error: the same trigger is listed twice\n    trigger: [a.b, a.b]\n              ^\nhint: list it once",
    ),
]


@pytest.mark.parametrize(("trigger", "expected"), CASES)
def test_trigger_messages(trigger, expected):
    assert (
        rendered(f"journeys:\n  j:\n    trigger: {trigger}\n    steps:\n      - exit\n") == expected
    )


def test_else_if_messages_point_into_the_key():
    assert (
        rendered(
            "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - if customer.a:\n          - exit\n        else if customer.a ==:\n          - exit\n"
        )
        == "r.yaml:7:30: error: expected an expression after '=='\n        else if customer.a ==:\n                             ^"
    )
