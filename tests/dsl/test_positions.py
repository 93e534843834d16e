"""Offsets inside YAML scalars map back to file line:col; the caret lines up."""

from __future__ import annotations

import pytest

from dsl.errors import RulesError, caret_line
from dsl.loader import Source, compose, scalar_position


def _position(yaml_text: str, needle: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(mapped position of ``needle`` in the value of key ``k``, where it really is)."""
    source = Source("t.yaml", yaml_text)
    problems: list = []
    root = compose(source, problems)
    assert problems == []
    node = next(v for k, v in root.value if k.value == "k")
    offset = node.value.index(needle)
    mapped = scalar_position(source, node, offset)
    # Where the needle's first character is in the file (first occurrence after the key).
    for i, line in enumerate(source.lines):
        col = line.find(needle[0] if needle[0] != " " else needle)
        if i >= node.start_mark.line and col >= 0 and needle.split()[0] in line:
            col = line.find(needle.split()[0])
            return mapped, (i + 1, col + 1)
    raise AssertionError("needle not in file")


@pytest.mark.parametrize(
    "yaml_text, needle",
    [
        ("k: send welcom\n", "welcom"),
        ("k:   send   welcom   \n", "welcom"),
        ("k: 'send welcom'\n", "welcom"),
        ("k: 'it''s welcom'\n", "welcom"),
        ('k: "send welcom"\n', "welcom"),
        ('k: "a\\tb\\"c welcom"\n', "welcom"),
        ('k: "\\u00e9\\x41 welcom"\n', "welcom"),
        ("k: customer.a ==\n  1 and\n    welcom\n", "welcom"),
        ("k: 'customer.a ==\n  1 and\n    welcom'\n", "welcom"),
        ('k: "customer.a ==\\\n  1 and welcom"\n', "welcom"),
        ('k: "one\n\n  two welcom"\n', "welcom"),
        ("k: |\n  line one\n  two welcom\n", "welcom"),
        ("k: >\n  line one\n  two welcom\n", "welcom"),
        ("k: >-\n    a\n\n    b welcom\n", "welcom"),
        ("- x\n" * 0 + "k: é é welcom\n", "welcom"),
        ("k: \tsend welcom\n", "welcom"),
    ],
)
def test_scalar_position_points_at_the_character(yaml_text, needle):
    mapped, actual = _position(yaml_text, needle)
    assert mapped == actual


def test_position_past_the_end_is_just_after_the_last_character():
    source = Source("t.yaml", "k: 'wait for x'\n")
    root = compose(source, [])
    node = root.value[0][1]
    assert scalar_position(source, node, len(node.value)) == (1, 15)


def test_caret_keeps_tabs_so_it_lines_up():
    assert caret_line("\tx = 1", 4) == "\t  ^"
    err = RulesError("f", 1, 4, "m", "h", "\tab c")
    assert err.render() == "f:1:4: error: m\n\tab c\n\t  ^\nhint: h"


def test_render_without_source_line():
    assert RulesError("rules", 1, 1, "rules folder not found").render() == (
        "rules:1:1: error: rules folder not found"
    )
