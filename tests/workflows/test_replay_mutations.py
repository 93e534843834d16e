"""The recorded histories cover every interpreter path: a change that adds a command on
any of them (a timer in the drain before continue-as-new, before `exit`, before a call,
a notify, either end of a `wait for`, a send, or a goal that no longer ends a journey)
fails the replay of the history that walks that path (tests/workflows/mutants.py), in the
histories recorded before the contract/interpreter split and in those recorded after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.mutants import MUTANTS, Unchanged

HISTORIES = Path(__file__).parent / "histories"
# state-bounds-v1: the entity that interpreted journeys itself (dict payloads);
# contract-v1: workflows/interpreter.py, dsl/contract.py payloads, customer settings.
LABELS = ("state-bounds-v1", "contract-v1")


def _history(label: str, customer: str) -> WorkflowHistory:
    (path,) = sorted(HISTORIES.glob(f"*-{label}-customer-{customer}.json"))
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_a_mutated_interpreter_fails_the_replay_of_its_path(name, label):
    mutant, customer = MUTANTS[name]
    history = _history(label, customer)
    # The real interpreter replays it (unsandboxed here, like the mutants, so the only
    # difference between the two runs is the mutation)...
    await Replayer(workflows=[Unchanged]).replay_workflow(history)
    # ...the mutant does not.
    result = await Replayer(workflows=[mutant]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is not None, f"{name}: the histories do not cover this path"
