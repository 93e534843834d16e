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
