"""Fixtures shared by the workflow tests."""

from __future__ import annotations

import pytest

from engine.tools.simulator import start_environment


@pytest.fixture(scope="module")
async def sim_env():
    """One time-skipping test server per test module: ``harness.run(..., env=sim_env)``
    runs each simulation on it (the simulator ends its customers' workflows afterwards, so
    the next test can reuse the same customer ids)."""
    env = await start_environment()
    yield env
    await env.shutdown()
