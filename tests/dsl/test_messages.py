"""Every compile check's message, pinned in full (caret line included)."""

from __future__ import annotations

import pytest

from dsl.compiler import compile_text

from .frontend_support import ACTIVITIES, TEMPLATES, compile_steps, rendered, renderer

STEP_CASES = [
    (
        "- send welcom",
        "r.yaml:8:14: error: unknown template 'welcom'\n"
        "      - send welcom\n"
        "             ^\n"
        "hint: did you mean 'welcome'?",
    ),
    (
        "- notify suport with alert",
        "r.yaml:8:16: error: unknown team 'suport'\n"
        "      - notify suport with alert\n"
        "               ^\n"
        "hint: did you mean 'support'?",
    ),
    (
        "- call create_tiket(priority='x')",
        "r.yaml:8:14: error: unknown activity 'create_tiket'\n"
        "      - call create_tiket(priority='x')\n"
        "             ^\n"
        "hint: did you mean 'create_ticket'?",
    ),
    (
        "- call create_ticket(priorty='x')",
        "r.yaml:8:14: error: create_ticket() is missing argument 'priority'\n"
        "      - call create_ticket(priorty='x')\n"
        "             ^\n\n"
        "r.yaml:8:28: error: create_ticket() has no argument 'priorty'\n"
        "      - call create_ticket(priorty='x')\n"
        "                           ^\n"
        "hint: did you mean 'priority'?",
    ),
    (
        "- call create_ticket(priority=1, tags='a')",
        "r.yaml:8:37: error: argument 'priority' of create_ticket() must be a string, not a number\n"
        "      - call create_ticket(priority=1, tags='a')\n"
        "                                    ^\n\n"
        "r.yaml:8:45: error: argument 'tags' of create_ticket() must be a list, not a string\n"
        "      - call create_ticket(priority=1, tags='a')\n"
        "                                            ^",
    ),
    (
        "- send welcome with n=costumer.age",
        "r.yaml:8:29: error: unknown name 'costumer'\n"
        "      - send welcome with n=costumer.age\n"
        "                            ^\n"
        "hint: did you mean 'customer'?",
    ),
    (
        "- send welcome with n=lenn(customer.x)",
        "r.yaml:8:29: error: unknown function 'lenn'\n"
        "      - send welcome with n=lenn(customer.x)\n"
        "                            ^\n"
        "hint: did you mean 'len'?",
    ),
    (
        "- send welcome with n=len(1, 2)",
        "r.yaml:8:29: error: len() takes 1 argument, got 2\n"
        "      - send welcome with n=len(1, 2)\n"
        "                            ^",
    ),
    (
        "- send welcome with n=len(3)",
        "r.yaml:8:33: error: len() needs a string or a list, not a number\n"
        "      - send welcome with n=len(3)\n"
        "                                ^",
    ),
    (
        '- set x = "a" + 1',
        "r.yaml:8:21: error: '+' cannot add a string and a number\n"
        '      - set x = "a" + 1\n'
        "                    ^\n"
        "hint: convert one side, or compare instead",
    ),
    (
        "- set x = 1 < 'x'",
        "r.yaml:8:19: error: '<' cannot compare a number with a string\n"
        "      - set x = 1 < 'x'\n"
        "                  ^",
    ),
    (
        "- set x = not 'x'",  # not is fine on anything
        "",
    ),
    (
        "- wait 0 days",
        "r.yaml:8:14: error: a duration must be longer than zero\n"
        "      - wait 0 days\n"
        "             ^",
    ),
    (
        "- wait -2 days",
        "r.yaml:8:14: error: a duration must be longer than zero\n"
        "      - wait -2 days\n"
        "             ^",
    ),
    (
        "- wait 520000 weeks",
        "r.yaml:8:14: error: a duration must be at most 1826 days (5 years)\n"
        "      - wait 520000 weeks\n"
        "             ^\n"
        "hint: for a yearly rhythm, end the journey and let it start again (reentry)",
    ),
    (
        "- wait 2 dayz",
        "r.yaml:8:16: error: unknown time unit 'dayz'\n"
        "      - wait 2 dayz\n"
        "               ^\n"
        "hint: did you mean 'day'?",
    ),
    (
        "- wait for order.shipped",
        "r.yaml:8:31: error: wait for needs 'within DURATION'\n"
        "      - wait for order.shipped\n"
        "                              ^\n"
        "hint: e.g. wait for order.placed within 3 days",
    ),
    (
        "- exit\n- send welcome",
        "r.yaml:9:9: error: unreachable step: the journey has already ended\n"
        "      - send welcome\n"
        "        ^\n"
        "hint: remove it, or move the 'exit'",
    ),
    (
        "- set x = event.id",
        "r.yaml:8:17: error: 'event' is only known inside a 'wait for'\n"
        "      - set x = event.id\n"
        "                ^\n"
        "hint: use it in the 'where' condition or the 'received:' steps",
    ),
    (
        "- wait for a.b within 1d:\n    timeout:\n      - send welcome with t=event.x",
        "r.yaml:10:35: error: 'event' is only known inside a 'wait for'\n"
        "            - send welcome with t=event.x\n"
        "                                  ^\n"
        "hint: use it in the 'where' condition or the 'received:' steps",
    ),
    (
        "- sned welcome",
        "r.yaml:8:9: error: unknown step 'sned'\n"
        "      - sned welcome\n"
        "        ^\n"
        "hint: did you mean 'send'?",
    ),
    (
        "- if customer.a ==:\n    - exit",
        "r.yaml:8:25: error: expected an expression after '=='\n"
        "      - if customer.a ==:\n"
        "                        ^",
    ),
    (
        "- if customer.a = 1:\n    - exit",
        "r.yaml:8:23: error: '=' is not a comparison\n"
        "      - if customer.a = 1:\n"
        "                      ^\n"
        "hint: use '==' to compare values",
    ),
    (
        "- if customer.vip",
        "r.yaml:8:9: error: an 'if' step needs a block\n"
        "      - if customer.vip\n"
        "        ^\n"
        "hint: end the line with ':' and list the steps below it, indented",
    ),
    (
        "- set trigger.x = 1",
        "r.yaml:8:13: error: 'trigger' is read-only\n"
        "      - set trigger.x = 1\n"
        "            ^\n"
        "hint: set customer.FIELD or a journey variable",
    ),
    (
        "- send broken",
        "tests/dsl/fixtures/templates/broken.html.j2:3:1: error: template syntax error: "
        "Unexpected end of template. Jinja was looking for the following tags: 'elif' or "
        "'else' or 'endif'. The innermost block that needs to be closed is 'if'.\n"
        "{% if customer.vip %}\n"
        "^\n"
        "hint: used by r.yaml:8:9",
    ),
]


@pytest.mark.parametrize("steps, expected", STEP_CASES)
def test_step_messages(steps, expected, monkeypatch):
    monkeypatch.chdir(TEMPLATES.parent.parent.parent.parent)  # repo root: relative paths
    from .frontend_support import compile_text as _  # noqa: F401

    result = compile_text(
        _journey(steps), "r.yaml", "tests/dsl/fixtures/templates", ACTIVITIES, renderer()
    )
    assert rendered(result) == expected


def _journey(steps: str) -> str:
    body = "\n".join("      " + ln for ln in steps.splitlines())
    return (
        "settings:\n  teams:\n    support: support@acme.test\njourneys:\n  j:\n"
        f"    trigger: order.placed\n    steps:\n{body}\n"
    )


FILE_CASES = [
    (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - exit\n  j:\n    trigger: a.b\n",
        "f.yaml:6:3: error: duplicate key 'j' (first at line 2)\n  j:\n  ^",
    ),
    (
        "jorneys: {}\n",
        "f.yaml:1:1: error: unknown key 'jorneys' at the top level\njorneys: {}\n^\n"
        "hint: did you mean 'journeys'?",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    stpes: []\n",
        "f.yaml:2:3: error: journey 'j' has no steps\n  j:\n  ^\nhint: add 'steps:'\n\n"
        "f.yaml:4:5: error: unknown key 'stpes' in journey 'j'\n    stpes: []\n    ^\n"
        "hint: did you mean 'steps'?",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    when: no\n    steps:\n      - exit\n",
        "f.yaml:4:11: error: YAML reads 'no' as a boolean, not text\n    when: no\n"
        '          ^\nhint: quote it: "no"',
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    when: 9:30\n    steps:\n      - off\n",
        "f.yaml:4:11: error: YAML reads '9:30' as a number, not text\n    when: 9:30\n"
        '          ^\nhint: quote it: "9:30"\n\n'
        "f.yaml:6:9: error: YAML reads 'off' as a boolean, not text\n      - off\n"
        '        ^\nhint: quote it: "off"',
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - wait 9:30\n",
        "f.yaml:5:15: error: unexpected character ':'\n      - wait 9:30\n"
        "              ^\nhint: only a block step ('if ...:', 'wait for ...:') ends with ':'",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n      -\n",
        "f.yaml:5:8: error: a step is empty\n      -\n       ^",
    ),
    (
        "journeys:\n  j:\n    trigger: order placed\n    steps:\n      - exit\n",
        "f.yaml:3:20: error: 'order placed' is not an event name\n    trigger: order placed\n"
        "                   ^\nhint: event names look like 'order.placed'",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    reentry: after 0 days\n    steps:\n      - exit\n",
        "f.yaml:4:20: error: a duration must be longer than zero\n"
        "    reentry: after 0 days\n                   ^",
    ),
    (
        "x: &a [1]\ny: *a\n",
        "f.yaml:1:4: error: YAML anchors (&a) are not allowed in rules\nx: &a [1]\n   ^\n"
        "hint: write the value out where it is used",
    ),
    (
        "journeys:\n  j:\n    steps:\n      - exit\n",
        "f.yaml:2:3: error: journey 'j' has no trigger\n  j:\n  ^\nhint: add 'trigger: EVENT'",
    ),
    (
        "settings:\n  teams:\n    a: a@x.test\n---\nsettings: {}\n",
        "f.yaml:4:1: error: a rules file holds one YAML document\n---\n^\n"
        "hint: split it into several files",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - send welcome: now\n",
        "f.yaml:5:9: error: only 'if', 'wait for' and 'split' steps open a block\n"
        "      - send welcome: now\n        ^\n"
        "hint: if ':' is part of the step, quote the whole step",
    ),
    (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - splt test:\n          a 50%: [exit]\n",
        "f.yaml:5:9: error: only 'if', 'wait for' and 'split' steps open a block\n"
        "      - splt test:\n        ^\n"
        "hint: did you mean 'split'?",
    ),
    (
        # A From that would fail every customer's email at send time (issue 7, case 8).
        'settings:\n  sender: "Acme <a@acme.test>, evil@x.test"\n'
        "  teams:\n    support: sup port@acme.test\n",
        "f.yaml:2:12: error: settings.sender must be one email address: "
        "'Acme <a@acme.test>, evil@x.test' holds 2 addresses\n"
        '  sender: "Acme <a@acme.test>, evil@x.test"\n'
        "           ^\n"
        'hint: write one address, e.g. "Acme <hello@acme.test>"\n\n'
        "f.yaml:4:14: error: team 'support' must be an email address, not 'sup port@acme.test'\n"
        "    support: sup port@acme.test\n"
        "             ^\n"
        'hint: write one address, e.g. "Acme <hello@acme.test>"',
    ),
    (
        "journeys: [\n",
        "f.yaml:2:1: error: invalid YAML: did not find expected node content\n"
        "\n^\nhint: while parsing a flow node",
    ),
]


@pytest.mark.parametrize("text, expected", FILE_CASES)
def test_file_messages(text, expected):
    result = compile_text(text, "f.yaml", TEMPLATES, ACTIVITIES)
    assert rendered(result) == expected


def test_duplicate_team_with_other_address_names_both_places(tmp_path):
    (tmp_path / "a.yaml").write_text("settings:\n  teams:\n    support: a@x.test\n")
    (tmp_path / "b.yaml").write_text("settings:\n  teams:\n    support: b@x.test\n")
    from dsl.compiler import compile_rules

    result = compile_rules(tmp_path, TEMPLATES, ACTIVITIES)
    path = tmp_path / "b.yaml"
    assert rendered(result) == (
        f"{path}:3:5: error: team 'support' is defined twice with different addresses "
        f"(first at {tmp_path / 'a.yaml'}:3:5)\n    support: b@x.test\n    ^"
    )


def test_duplicate_journey_across_files_names_both_places(tmp_path):
    body = "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - exit\n"
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(body)
    from dsl.compiler import compile_rules

    result = compile_rules(tmp_path, TEMPLATES, ACTIVITIES)
    assert [p.render() for p in result.problems] == [
        f"{tmp_path / 'sub' / 'b.yml'}:2:3: error: journey 'j' is defined twice "
        f"(first at {tmp_path / 'a.yaml'}:2:3)\n  j:\n  ^\nhint: rename one of them"
    ]
    assert list(result.plan.journeys) == ["j"]


def test_every_problem_is_reported_in_one_run():
    result = compile_steps("- send welcom", "- wait 0 days", "- notify nobody with alert")
    assert [(p.line, p.col) for p in result.problems] == [(8, 14), (9, 14), (10, 16)]


def test_validate_renders_templates_and_reports_bombs_and_escapes_at_their_lines(monkeypatch):
    """Each sent template is rendered with sample values under the send-time limits; every
    bomb and sandbox violation is reported at once, at the template's file:line."""
    monkeypatch.chdir(TEMPLATES.parent.parent.parent.parent)  # repo root: relative paths
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "0.5")
    steps = (
        "- send loops\n- send big\n- wait for review.posted within 1 day:\n"
        "    received:\n      - send escape\n- send receipt with discount=10"
    )
    bombs = "tests/dsl/fixtures/bomb_templates"
    result = compile_text(_journey(steps), "r.yaml", bombs, renderer=renderer())
    assert rendered(result) == (
        "tests/dsl/fixtures/bomb_templates/escape.html.j2:2:1: error: template refused by the "
        "sandbox: access to attribute '__class__' of 'SampleValue' object is unsafe.\n"
        "<p>{{ customer.name.__class__.__mro__[1].__subclasses__() }}</p>\n"
        "^\n"
        "hint: used by r.yaml:12:15; a template can only use the data it is given, within limits"
        "\n\n"
        "tests/dsl/fixtures/bomb_templates/layouts/big.html.j2:2:1: error: template refused by "
        "the sandbox: '*' would repeat a value of length 1 1000000000 times; the limit is "
        "1,000,000 items\n"
        '<p>{{ "x" * 10**9 }}</p>\n'
        "^\n"
        "hint: used by r.yaml:9:9; a template can only use the data it is given, within limits"
        "\n\n"
        "tests/dsl/fixtures/bomb_templates/loops.html.j2:2:1: error: template over a render "
        "limit: rendering took longer than 0.5 s (LIFECYCLE_RENDER_TIMEOUT)\n"
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
        "^\n"
        "hint: used by r.yaml:8:9; make the template lighter (it would fail for every customer)"
    )
