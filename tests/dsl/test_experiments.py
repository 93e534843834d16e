"""Experiments (CONTRACT.md §8), the pure parts: variant assignment and the holdout are a
stable function of customer id, journey and experiment (pinned values, balance over a
fixed set of ids), the attribution window, and `validate`'s messages for split,
holdout and goal_within (pinned in full)."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest

from dsl import ir
from dsl.compiler import compile_text
from dsl.experiments import BASIS, assign, bucket, converted, in_holdout

IDS = [f"c-{i}" for i in range(20000)]  # fixed: the bounds below cannot flake
HALVES = [("control", 5000), ("playful", 5000)]


def test_buckets_are_pinned():
    # sha256 of "journey\x1fexperiment\x1fcustomer id": the same in every process, on
    # every worker and in every later version (changing it would move running customers)
    assert bucket("c-1", "welcome", "subject-test") == 9418
    assert bucket("c-2", "welcome", "subject-test") == 7054
    assert bucket("", "", "") == 5340
    assert assign("c-1", "welcome", "subject-test", HALVES) == "playful"  # 9418 >= 5000


def _fresh(code: str) -> str:
    """Run ``code`` in a new Python (another hash seed) and return its output."""
    env = {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip()


def test_assignment_is_the_same_in_another_process():
    code = (
        "from dsl.experiments import assign\n"
        "ids = [f'c-{i}' for i in range(200)]\n"
        "print(','.join(assign(c, 'welcome', 'subject-test', "
        "[('control', 5000), ('playful', 5000)]) for c in ids))"
    )
    here = ",".join(assign(c, "welcome", "subject-test", HALVES) for c in IDS[:200])
    assert _fresh(code) == here


def test_assignment_is_deterministic():
    first = [assign(c, "welcome", "subject-test", HALVES) for c in IDS[:1000]]
    again = [assign(c, "welcome", "subject-test", HALVES) for c in IDS[:1000]]
    assert first == again


def _within(count: int, n: int, p: float, z: float = 5.0) -> bool:
    """``count`` of ``n`` is within ``z`` standard deviations of ``n * p``."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize(
    "shares",
    [HALVES, [("a", 1000), ("b", 2000), ("c", 7000)], [("a", 3333), ("b", 3333), ("c", 3334)]],
)
def test_assignment_is_balanced(shares):
    n = len(IDS)
    counts = {name: 0 for name, _ in shares}
    for c in IDS:
        counts[assign(c, "welcome", "subject-test", shares)] += 1
    for name, weight in shares:
        assert _within(counts[name], n, weight / BASIS), (name, counts)


def test_experiments_and_journeys_are_independent():
    # the same customer's variant in one experiment says nothing of another's
    n = len(IDS)
    same = sum(assign(c, "welcome", "a", HALVES) == assign(c, "welcome", "b", HALVES) for c in IDS)
    assert _within(same, n, 0.5)
    same = sum(assign(c, "welcome", "a", HALVES) == assign(c, "win-back", "a", HALVES) for c in IDS)
    assert _within(same, n, 0.5)


def test_holdout_share_and_independence_from_splits():
    n = len(IDS)
    held = [c for c in IDS if in_holdout(c, "welcome", 1000)]
    assert _within(len(held), n, 0.10)
    # among the held-out and the rest, the split keeps its shares
    for group in (held, [c for c in IDS if not in_holdout(c, "welcome", 1000)]):
        control = sum(assign(c, "welcome", "subject-test", HALVES) == "control" for c in group)
        assert _within(control, len(group), 0.5)
    assert not any(in_holdout(c, "welcome", 0) for c in IDS[:1000])


def test_attribution_window():
    entered = "2030-01-01T00:00:00Z"
    assert converted(entered, "2030-01-15T00:00:00Z", 14 * 86400)  # the window's end counts
    assert not converted(entered, "2030-01-15T00:00:01Z", 14 * 86400)
    assert converted(entered, "2031-01-01T00:00:00Z", 0)  # no window: any time
    assert not converted(entered, "", 14 * 86400)  # no goal event


TEMPLATES = {"welcome": "{% block subject %}Hi{% endblock %}x"}


def _problems(rules: str, tmp_path) -> str:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in TEMPLATES.items():
        (folder / f"{name}.html.j2").write_text(text)
    result = compile_text(textwrap.dedent(rules), "f.yaml", folder)
    return "\n".join(str(p) for p in result.problems)


def test_split_compiles_to_the_ir(tmp_path):
    rules = """\
    journeys:
      j:
        trigger: a.b
        goal: order.placed
        goal_within: 14 days
        holdout: 12.5%
        steps:
          - split subject-test:
              control 50%:
                - send welcome
              playful 50%:
                - send welcome
                - exit
    """
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "welcome.html.j2").write_text(TEMPLATES["welcome"])
    result = compile_text(textwrap.dedent(rules), "f.yaml", folder)
    assert not result.problems
    journey = result.plan.journeys["j"]
    assert (journey.goal_within, journey.holdout) == (14 * 86400, 1250)
    split = journey.steps[0]
    assert isinstance(split, ir.Split) and split.experiment == "subject-test"
    assert [(v.name, v.weight, len(v.steps)) for v in split.variants] == [
        ("control", 5000, 1),
        ("playful", 5000, 2),
    ]
    # JSON round trip (the plan crosses Temporal's data converter)
    again = ir.journey_from_dict(ir.to_dict(journey))
    assert ir.to_dict(again) == ir.to_dict(journey)
    assert again.compute_hash() == journey.hash


def test_journeys_without_experiments_keep_their_hash(tmp_path):
    # goal_within and holdout at their defaults are left out of the hash
    rules = """\
    journeys:
      j:
        trigger: a.b
        steps:
          - send welcome
    """
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "welcome.html.j2").write_text(TEMPLATES["welcome"])
    journey = compile_text(textwrap.dedent(rules), "f.yaml", folder).plan.journeys["j"]
    data = ir.to_dict(journey)
    data.pop("goal_within"), data.pop("holdout")
    assert ir.journey_from_dict(data).compute_hash() == journey.hash


def test_split_errors_are_all_reported(tmp_path):
    rules = """\
    journeys:
      j:
        trigger: a.b
        holdout: 100%
        goal_within: 3 dayz
        steps:
          - split bad:
              a 30%:
                - send welcome
              b 60%:
                - send welcome
          - split bad:
              a 40%:
                - send welcome
              a 60%:
                - send welcome
          - split c:
              a:
                - send welcome
              b 50.125%:
                - send welcome
          - split one:
              a 100%:
                - send welcome
          - split
          - split none
    """
    assert _problems(rules, tmp_path) == textwrap.dedent(
        """\
        f.yaml:4:14: error: a holdout of 100% sends nothing to anyone
            holdout: 100%
                     ^
        hint: e.g. 10%
        f.yaml:5:18: error: goal_within needs a goal
            goal_within: 3 dayz
                         ^
        hint: add 'goal: EVENT' (the event that counts as a conversion)
        f.yaml:5:20: error: unknown time unit 'dayz'
            goal_within: 3 dayz
                           ^
        hint: did you mean 'day'?
        f.yaml:7:15: error: the variants of split 'bad' add up to 90%, not 100%
              - split bad:
                      ^
        hint: make the shares sum to 100%
        f.yaml:12:15: error: experiment 'bad' is already split at line 7
              - split bad:
                      ^
        hint: give each split of a journey its own name
        f.yaml:15:11: error: variant 'a' is listed twice
                  a 60%:
                  ^
        hint: name each variant once
        f.yaml:18:12: error: unexpected end of the variant; expected a number
                  a:
                   ^
        hint: write each variant as 'NAME N%:', e.g. 'control 50%:'
        f.yaml:20:13: error: 50.125% has more than two decimals
                  b 50.125%:
                    ^
        hint: e.g. 12.5%
        f.yaml:22:9: error: split 'one' has one variant; a split needs at least two
              - split one:
                ^
        hint: add another variant, e.g. 'control 50%:'
        f.yaml:25:14: error: expected an experiment name after 'split', found the end
              - split
                     ^
        hint: write: split NAME: with one 'VARIANT N%:' block per variant below it
        f.yaml:26:9: error: a 'split' step needs a block
              - split none
                ^
        hint: end the line with ':' and list one 'VARIANT N%:' block below it per variant"""
    )


def test_journey_keys_have_a_did_you_mean(tmp_path):
    rules = """\
    journeys:
      j:
        trigger: a.b
        holdot: 10%
        steps:
          - send welcome
    """
    assert "hint: did you mean 'holdout'?" in _problems(rules, tmp_path)
