"""Shared pieces for the front-end tests: fixture folders and a small activity table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dsl.compiler import CompileResult, compile_text
from engine.runtime.registry import ActivitySpec, Param

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = FIXTURES / "templates"


@dataclass
class TicketInput:
    priority: str
    complaint: str = ""


async def _ticket(inp: TicketInput) -> dict:
    return {"id": "T-1"}


ACTIVITIES = {
    "create_ticket": ActivitySpec(
        name="create_ticket",
        fn=_ticket,
        input_type=TicketInput,
        params={
            "priority": Param("str", True),
            "complaint": Param("str", False),
            "tags": Param("list", False),
        },
        timeout_seconds=30,
        max_attempts=5,
    )
}


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
    return compile_text("\n".join(lines) + "\n", "r.yaml", templates, ACTIVITIES)


def rendered(result: CompileResult) -> str:
    return "\n\n".join(p.render() for p in result.problems)
