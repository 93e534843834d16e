"""Experiments on Temporal's time-skipping server (CONTRACT.md §8), through the simulator
with the real email activity and SMTP server: each customer runs the variant
``dsl.experiments.assign`` gives (also on re-entry), reported as a ``split`` line; a
holdout customer is sent nothing (each send suppressed, reason holdout) and still
converts; a goal event inside the attribution window converts, one after it ends the
journey without converting."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from dsl.experiments import assign, in_holdout
from tests.workflows.harness import event, run, sends, signup, write_templates
from tests.workflows.mutants import EXPERIMENT_MUTANTS, Unchanged

NAMES = ["welcome", "welcome-playful", "nudge"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return write_templates(tmp_path_factory.mktemp("templates"), NAMES)


SPLIT = """
journeys:
  welcome:
    trigger: customer.signed_up
    reentry: always
    steps:
      - split subject-test:
          control 50%:
            - send welcome
          playful 50%:
            - send welcome-playful
      - send nudge
"""
HALVES = [("control", 5000), ("playful", 5000)]
IDS = [f"c{i}" for i in range(16)]


async def test_each_customer_runs_its_variant(sim_env, templates):
    result = await run(SPLIT, templates, [signup(c) for c in IDS], env=sim_env)
    lines = [a for a in result.public_actions() if a["action"] == "split"]
    assert sorted((a["customer_id"], a["variant"]) for a in lines) == sorted(
        (c, assign(c, "welcome", "subject-test", HALVES)) for c in IDS
    )
    assert all(a["experiment"] == "subject-test" for a in lines)
    assert {a["variant"] for a in lines} == {"control", "playful"}  # both occur in 16
    for c in IDS:
        template = {"control": "welcome", "playful": "welcome-playful"}[
            assign(c, "welcome", "subject-test", HALVES)
        ]
        assert sends(result, c) == [(0.0, template), (0.0, "nudge")]
    assert len(result.emails) == 2 * len(IDS)


async def test_reentry_keeps_the_variant(sim_env, templates):
    events = [signup(c, day) for c in IDS[:6] for day in (0, 1, 2)]
    result = await run(SPLIT, templates, events, env=sim_env)
    for c in IDS[:6]:
        variants = [
            a["variant"]
            for a in result.public_actions()
            if a["action"] == "split" and a["customer_id"] == c
        ]
        assert variants == [assign(c, "welcome", "subject-test", HALVES)] * 3


HOLDOUT = """
journeys:
  welcome:
    trigger: customer.signed_up
    goal: order.placed
    holdout: 50%
    steps:
      - send welcome
      - wait 2 days
      - send nudge
"""


async def test_holdout_is_sent_nothing_and_still_converts(sim_env, templates):
    held = [c for c in IDS if in_holdout(c, "welcome", 5000)]
    rest = [c for c in IDS if c not in held]
    assert held and rest
    events = [signup(c) for c in IDS] + [event("order.placed", c, 1) for c in (held[0], rest[0])]
    result = await run(HOLDOUT, templates, events, env=sim_env)
    for c in held:
        lines = [
            a for a in result.public_actions() if a["customer_id"] == c and a["action"] == "send"
        ]
        assert [(a["template"], a["status"], a["reason"]) for a in lines] == (
            [("welcome", "suppressed", "holdout")]
            + ([("nudge", "suppressed", "holdout")] if c != held[0] else [])
        )
    recipients = [r for m in result.emails for r in m.rcpt_tos]
    assert len(recipients) == len(rest) * 2 - 1  # rest[0] ordered before the nudge
    assert not {f"{c}@example.test" for c in held} & set(recipients)
    starts = {
        a["customer_id"]: a.get("holdout", False) for a in result.actions if a["action"] == "start"
    }
    assert starts == {c: c in held for c in IDS}
    converted = {
        a["customer_id"]: (a["reason"], a["converted"])
        for a in result.public_actions()
        if a["action"] == "end"
    }
    assert converted[held[0]] == ("goal", True)
    assert converted[rest[0]] == ("goal", True)
    assert converted[held[1]] == ("completed", False)


WINDOW = """
journeys:
  welcome:
    trigger: customer.signed_up
    goal: order.placed
    goal_within: 3 days
    steps:
      - wait 10 days
      - send nudge
  no-window:
    trigger: customer.signed_up
    goal: order.placed
    steps:
      - wait 10 days
  no-goal:
    trigger: customer.signed_up
    steps:
      - wait 1 day
"""


async def test_conversions_inside_and_outside_the_window(sim_env, templates):
    events = [signup("inside"), signup("outside"), signup("never")]
    events += [event("order.placed", "inside", 2.5), event("order.placed", "outside", 3.5)]
    result = await run(WINDOW, templates, events, until=timedelta(days=20), env=sim_env)
    got = sorted(
        (a["customer_id"], a["journey"], a["reason"], a.get("converted"))
        for a in result.public_actions()
        if a["action"] == "end"
    )
    assert got == [
        ("inside", "no-goal", "completed", None),
        ("inside", "no-window", "goal", True),
        ("inside", "welcome", "goal", True),
        ("never", "no-goal", "completed", None),
        ("never", "no-window", "completed", False),
        ("never", "welcome", "completed", False),
        ("outside", "no-goal", "completed", None),
        ("outside", "no-window", "goal", True),
        ("outside", "welcome", "goal", False),  # ended by the goal, after the window
    ]
    assert sends(result) == [(10.0, "nudge")]


HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("name", sorted(EXPERIMENT_MUTANTS))
async def test_experiment_histories_catch_a_changed_split_or_holdout(name):
    """The experiments-v1 histories replay on the interpreter, and fail on one whose split
    picks another variant, which ignores the holdout, or which adds a command."""
    mutant, customer = EXPERIMENT_MUTANTS[name]
    (path,) = sorted(HISTORIES.glob(f"*-experiments-v1-customer-{customer}.json"))
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    await Replayer(workflows=[Unchanged]).replay_workflow(history)
    result = await Replayer(workflows=[mutant]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is not None, f"{name}: the histories do not cover this path"
