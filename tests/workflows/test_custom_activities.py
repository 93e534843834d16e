"""A failing custom activity retries per its policy, then fails only its own journey."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.runtime import registry
from tests.workflows.harness import ends, run, sends, signup, write_templates


@dataclass
class FlakyInput:
    reason: str
    customer_id: str = ""


async def always_fails(inp: FlakyInput) -> dict:
    raise RuntimeError(f"backend down: {inp.reason}")


@pytest.fixture(scope="module")
def activities():
    # Registered for these tests only, not left in the global registry.
    registry.activity("always_fails", timeout_seconds=5, max_attempts=3)(always_fails)
    spec = registry._REGISTRY.pop("always_fails")
    return {**registry.load_registry(), "always_fails": spec}


async def test_failing_activity_fails_its_journey_and_not_the_others(sim_env, tmp_path, activities):
    templates = write_templates(tmp_path / "t", ["welcome", "later", "never"])
    rules = """
journeys:
  flaky:
    trigger: customer.signed_up
    steps:
      - call always_fails(reason="test") as result
      - send never
  steady:
    trigger: customer.signed_up
    steps:
      - send welcome
      - wait 1 day
      - send later
"""
    result = await run(rules, templates, [signup("ann")], activities=activities, env=sim_env)
    assert sends(result) == [(0, "welcome"), (1, "later")]
    assert sorted(ends(result)) == [("flaky", "failed"), ("steady", "completed")]
    failed = next(a for a in result.public_actions() if a.get("reason") == "failed")
    assert "backend down: test" in failed["error"]


async def test_unknown_and_wrongly_called_activities_are_compile_errors(tmp_path, activities):
    from dsl.compiler import compile_text
    from engine.runtime.registry import catalogue

    templates = write_templates(tmp_path / "t", ["welcome"])
    rules = """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - call always_fail(reason="x")
      - call always_fails(reason=1)
"""
    problems = [
        str(p.message)
        for p in compile_text(rules, "r.yaml", templates, catalogue(activities)).problems
    ]
    assert any("unknown activity 'always_fail'" in p for p in problems), problems
    assert any("reason" in p for p in problems), problems
