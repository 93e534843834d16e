"""Hostile and arbitrary input: only the language's own errors, never a crash or a hang."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.compiler import compile_text, parse_expression
from dsl.errors import RulesError
from dsl.parser import MAX_DEPTH, MAX_TEXT

from .frontend_support import ACTIVITIES, TEMPLATES, compile_steps


def _messages(result) -> list[str]:
    return [p.message for p in result.problems]


def test_ten_thousand_nested_parentheses_in_a_file():
    expr = "(" * 4_000 + "1" + ")" * 4_000  # under MAX_TEXT, far over MAX_DEPTH
    result = compile_steps(f"- set x = {expr}")
    assert _messages(result) == [f"nested too deeply (more than {MAX_DEPTH} levels)"]


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "1" + ")" * 10_000,
        "not " * 10_000 + "x",
        "- " * 10_000 + "1",
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_ten_thousand_deep_expressions_are_refused(text):
    with pytest.raises(RulesError) as info:
        parse_expression(text)
    assert info.value.message.startswith(("too long", "nested too deeply"))


@pytest.mark.parametrize("depth", [2_000, 2_400])
def test_deep_nesting_under_the_length_limit(depth):
    for text in ("(" * depth + "1" + ")" * depth, "not " * depth + "x", "-" * depth + "1"):
        assert len(text) <= MAX_TEXT
        with pytest.raises(RulesError) as info:
            parse_expression(text)
        assert info.value.message == f"nested too deeply (more than {MAX_DEPTH} levels)"


def test_one_megabyte_expression():
    text = " + ".join(["1"] * 350_000)
    with pytest.raises(RulesError) as info:
        parse_expression(text)
    assert info.value.message == f"too long: {len(text):,} characters (the limit is 10,000)"


def test_one_megabyte_when_in_a_file():
    result = compile_steps("- exit", when="'" + "a" * 1_000_000 + "'")
    assert _messages(result) == ["too long: 1,000,000 characters (the limit is 10,000)"]


def test_alias_bomb_is_refused():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)}]\n"
        for i in range(8)
    )
    result = compile_text(bomb, "bomb.yaml", TEMPLATES, ACTIVITIES)
    assert _messages(result) == ["YAML anchors (&a) are not allowed in rules"]


def test_alias_without_anchor_is_refused():
    result = compile_text("journeys: *x\n", "a.yaml", TEMPLATES, ACTIVITIES)
    assert len(result.problems) == 1
    assert result.problems[0].message.startswith(("YAML aliases", "invalid YAML"))


def test_deep_yaml_nesting_is_refused_not_crashed():
    for text in ("a: " + "[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x", "{a: " * 50_000):
        result = compile_text(text, "deep.yaml", TEMPLATES, ACTIVITIES)
        assert len(result.problems) == 1
        message = result.problems[0].message
        assert message.startswith(("nested too deeply", "invalid YAML")), message


_TOKENS = st.sampled_from(
    [
        "send", "notify", "wait", "for", "where", "within", "if", "call", "set", "exit",
        "with", "as", "and", "or", "not", "in", "true", "false", "null", "customer",
        "trigger", "event", "x", ".", ",", "(", ")", "[", "]", "=", "==", "<", ">=", "+",
        "-", "*", "/", "1", "2.5", "'s'", '"q"', "days", "3d", "welcome", "support",
        "len", "create_ticket", ":", "#", "'", "\\", "\t", "é",
    ]
)  # fmt: skip
_STEPISH = st.one_of(st.text(max_size=60), st.lists(_TOKENS, max_size=14).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_STEPISH)
def test_any_text_as_a_step_yields_a_result(text):
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    quoted = quoted.replace("\n", "\\n").replace("\r", "\\r")
    result = compile_steps(f"- {quoted}")
    for p in result.problems:
        assert isinstance(p, RulesError)
        assert p.line >= 1 and p.col >= 1
        p.render()


@settings(max_examples=300, deadline=None)
@given(_STEPISH)
def test_any_text_as_an_expression_parses_or_raises_rules_error(text):
    try:
        expr = parse_expression(text)
    except RulesError as e:
        e.render()
        return
    assert isinstance(expr.tree, list)


_YAMLISH = st.lists(
    st.sampled_from(
        [
            "journeys:", "settings:", "  teams:", "    a: a@x", "  j:", "    trigger: a.b",
            "    steps:", "      - exit", "      - if x:", "          - send welcome",
            "        else:", "      - wait for a.b within 1d:", "          received:",
            "          timeout:", "- &a x", "*a", "  - [", "{", "'", '"', "---", ": :",
            "\t- x", "    when: no", "    reentry: after 2 days", "      - 9:30", "",
        ]
    ),
    max_size=20,
).map("\n".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(_YAMLISH, st.text(max_size=200)))
def test_any_text_as_a_rules_file_yields_a_result(text):
    result = compile_text(text, "f.yaml", TEMPLATES, ACTIVITIES)
    for p in result.problems:
        assert isinstance(p, RulesError)
        p.render()
