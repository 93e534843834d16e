"""A split, a holdout and goal_within as `lifecycle show`, `graph` and `journeys` print
them (the experiments sample)."""

from __future__ import annotations

from pathlib import Path

from engine.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "experiments"
ARGS = ["--rules", str(SAMPLE / "rules"), "--templates", str(SAMPLE / "templates")]


def test_show_prints_the_variants_holdout_and_window(capsys):
    assert main(["show", "welcome-test", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "  goal: order.placed within 2w\n  holdout: 10%\n" in out
    assert (
        "    split subject-test    # line 14\n"
        "      control 50%\n"
        "        send welcome    # line 16\n"
        "      playful 50%\n"
        "        send welcome-playful    # line 18\n"
        "    wait 2w    # line 19\n"
    ) in out


def test_graph_draws_an_edge_per_variant(capsys):
    assert main(["graph", "welcome-test", *ARGS]) == 0
    out = capsys.readouterr().out
    assert 's0{"split subject-test"}' in out
    assert 's0 -->|"control 50%"| s1' in out and 's0 -->|"playful 50%"| s2' in out
    assert "s1 --> s3" in out and "s2 --> s3" in out


def test_show_prints_an_else_if_chain_as_written(tmp_path, capsys):
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    for name in ("gold", "silver", "other"):
        (templates / f"{name}.html.j2").write_text("{% block subject %}Hi{% endblock %}")
    (rules / "r.yaml").write_text(
        "journeys:\n"
        "  tiers:\n"
        "    trigger: customer.signed_up\n"
        "    steps:\n"
        '      - if customer.plan == "gold":\n'
        "          - send gold\n"
        '        else if customer.plan == "silver":\n'
        "          - send silver\n"
        "        else:\n"
        "          - send other\n"
    )
    assert main(["show", "tiers", "--rules", str(rules), "--templates", str(templates)]) == 0
    assert (
        '    if customer.plan == "gold"    # line 5\n'
        "      send gold    # line 6\n"
        '    else if customer.plan == "silver"    # line 7\n'
        "      send silver    # line 8\n"
        "    else\n"
        "      send other    # line 10\n"
    ) in capsys.readouterr().out
