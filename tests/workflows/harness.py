"""Shared pieces for workflow tests: compile rules text, run events through the real
workflows and activities on the time-skipping server (via ``engine.tools.simulator``), and read
back what was sent."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dsl.compiler import compile_text
from engine.delivery.render_pool import shared_pool
from engine.runtime.plans import PlanStore
from engine.runtime.registry import catalogue, load_registry
from engine.tools.simulator import SimulationResult, simulate

START = datetime(2030, 1, 1, tzinfo=UTC)

GENERIC = (
    '<html><head><title>{% block subject %}NAME for {{ customer.name | default("you") }}{% endblock %}'
    "</title></head><body><p>NAME</p></body></html>\n"
)


def write_templates(folder: Path, names: list[str], special: dict[str, str] | None = None) -> Path:
    """A templates folder: each name gets a template whose subject is 'NAME for <name>'."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.html.j2").write_text(GENERIC.replace("NAME", name))
    for name, text in (special or {}).items():
        (folder / f"{name}.html.j2").write_text(text)
    return folder


def _compile(rules: str, templates: Path, activities: dict | None):
    """The compiler given what the worker has: the registry's catalogue (the loaded
    ``activities`` package when none is given) and the render pool."""
    registry = activities if activities is not None else load_registry()
    return compile_text(rules, "rules/test.yaml", templates, catalogue(registry), shared_pool())


def compile_plan(rules: str, templates: Path, activities: dict | None = None):
    result = _compile(rules, templates, activities)
    assert not result.problems, "\n".join(str(p) for p in result.problems)
    return result.plan


def compile_store(rules: str, templates: Path, activities: dict | None = None) -> PlanStore:
    """A store over the compiled rules and the template set they were validated with."""
    result = _compile(rules, templates, activities)
    assert not result.problems, "\n".join(str(p) for p in result.problems)
    return PlanStore.from_plan(result.plan, activities, templates=result.template_set)


def event(type_: str, customer_id: str = "c1", day: float = 0, **kw) -> tuple[datetime, dict]:
    """(simulated time, event) at ``day`` days after START."""
    ev = {"type": type_, "customer_id": customer_id, "customer": {}, "data": {}}
    ev.update(kw)
    return START + timedelta(days=day), ev


def signup(customer_id: str = "c1", day: float = 0, **profile) -> tuple[datetime, dict]:
    customer = {"name": customer_id.title(), "email": f"{customer_id}@example.test"}
    customer.update(profile)
    return event("customer.signed_up", customer_id, day, customer=customer)


async def run(
    rules: str,
    templates: Path,
    events: list,
    until: timedelta = timedelta(days=90),
    activities: dict | None = None,
    env=None,
) -> SimulationResult:
    """Simulate ``events`` over ``rules``; on ``env`` (the module's ``sim_env``) if given,
    else on a server of its own."""
    store = compile_store(rules, templates, activities)
    return await simulate(events, None, templates, START, until, store=store, env=env)


def sends(result: SimulationResult, customer_id: str | None = None) -> list[tuple[float, str]]:
    """(day offset, template) of every send/notify, in order.

    Days are rounded to 1/1000 (~1.5 minutes): the test server's clock also moves with real
    time while activities run, so simulated times can lag by a second or two."""
    out = []
    for a in result.public_actions():
        if a["action"] in ("send", "notify") and customer_id in (None, a["customer_id"]):
            at = datetime.fromisoformat(a["at"].replace("Z", "+00:00"))
            out.append((round((at - START).total_seconds() / 86400, 3), a["template"]))
    return out


def ends(result: SimulationResult) -> list[tuple[str, str]]:
    return [(a["journey"], a["reason"]) for a in result.public_actions() if a["action"] == "end"]


async def until(predicate, timeout: float = 30.0) -> None:
    """Wait (real time) until ``predicate()`` (sync or async) holds; fail after ``timeout``."""
    for _ in range(int(timeout / 0.05)):
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")
