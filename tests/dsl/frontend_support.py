"""Shared pieces for the front-end tests: fixture folders and a small activity table."""

from __future__ import annotations

from pathlib import Path

from dsl.catalogue import ActivityDecl, Param
from dsl.compiler import CompileResult, compile_text
from engine.delivery.render_pool import shared_pool

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = FIXTURES / "templates"

# The catalogue the compiler checks calls against: plain data, no activity code.
ACTIVITIES = {
    "create_ticket": ActivityDecl(
        name="create_ticket",
        params={
            "priority": Param("str", True),
            "complaint": Param("str", False),
            "tags": Param("list", False),
        },
        timeout_seconds=30,
        max_attempts=5,
    )
}


def renderer():
    """The engine's render pool, for the sample renders ``validate`` makes (started on
    first use, shared by the process)."""
    return shared_pool()


def compile_steps(
    *steps: str, when: str | None = None, extra: str = "", templates: Path = TEMPLATES
) -> CompileResult:
    """Compile one journey whose steps are the given lines (block steps as raw YAML)."""
    lines = [
        "settings:",
        "  teams:",
        "    support: support@acme.test",
        "journeys:",
        "  j:",
        "    trigger: order.placed",
    ]
    if when is not None:
        lines.append(f"    when: {when}")
    if extra:
        lines.append(extra)
    lines.append("    steps:")
    for step in steps:
        lines.extend("      " + ln for ln in step.splitlines())
    text = "\n".join(lines) + "\n"
    return compile_text(text, "r.yaml", templates, ACTIVITIES, renderer())


def rendered(result: CompileResult) -> str:
    return "\n\n".join(p.render() for p in result.problems)
