"""``lifecycle show JOURNEY``: print one journey's compiled plan.

In: a journey name, ``--rules``/``--templates`` folders and ``--json``.
Out: the plan as an indented outline (or JSON with ``--json``) on stdout and
``ExitCode.OK``; compile problems or an unknown journey (with a did-you-mean hint) on
stderr and ``ExitCode.PROBLEMS``. Without a journey name: the list of journeys
(``engine.cli.journeys.list_journeys``).
"""

from __future__ import annotations

import argparse
import json
import sys

from dsl.clock import short_duration
from engine.cli import ExitCode, add_content_arguments
from engine.cli.journeys import list_journeys, unknown_journey

EXAMPLES = (
    "lifecycle show",
    "lifecycle show welcome-series",
    "lifecycle show welcome-series --json",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "journey", nargs="?", help="journey name (leave it out to list the journeys)"
    )
    add_content_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> ExitCode:
    from dsl.ir import to_dict
    from engine.runtime.plans import compile_content

    result = compile_content(args.rules, args.templates)
    if args.journey is None:
        return list_journeys(result, "show")
    journey = result.plan.journeys.get(args.journey)
    if journey is None:
        return unknown_journey(result, args.journey, result.problems)
    if args.json:
        print(json.dumps(to_dict(journey), indent=2))
    else:
        print("\n".join(describe_journey(journey, result.plan.settings.sender)))
    if result.problems:
        print(
            f"warning: the rules have {len(result.problems)} problem(s); run validate",
            file=sys.stderr,
        )
    return ExitCode.OK


def describe_journey(journey, sender: str = "") -> list[str]:
    """A journey as readable lines: header fields, then steps indented by block."""
    lines = [f"journey {journey.name}  ({journey.origin}, hash {journey.hash})"]
    if journey.description:
        lines.append(f"  description: {journey.description}")
    triggers = getattr(journey, "triggers", [journey.trigger])
    lines.append("  trigger: " + ", or ".join(str(t) for t in triggers))
    if journey.when is not None:
        lines.append(f"  when: {journey.when.src}")
    if journey.goal:
        within = f" within {short_duration(journey.goal_within)}" if journey.goal_within else ""
        lines.append(f"  goal: {journey.goal}{within}")
    if journey.holdout:
        lines.append(f"  holdout: {journey.holdout / 100:g}%")
    if journey.key is not None:
        lines.append(f"  key: {journey.key.src}")
    if getattr(journey, "exit_when", None) is not None:
        lines.append(f"  exit_when: {journey.exit_when.src}")
    reentry = journey.reentry.mode
    if reentry == "after":
        reentry += f" {short_duration(journey.reentry.seconds)}"
    lines.append(f"  reentry: {reentry}")
    if journey.message_class == "transactional":
        lines.append("  class: transactional")
    elif journey.when_capped != "wait":
        lines.append(f"  when_capped: {journey.when_capped}")
    # The sender is a customer-wide setting; journeys pinned before carry their own.
    lines.append(f"  sender: {journey.sender or sender}")
    lines.append("  steps:")
    lines.extend(_steps(journey.steps, 2))
    return lines


def _args(args: dict) -> str:
    if not args:
        return ""
    return " with " + ", ".join(f"{k}={v.src}" for k, v in args.items())


def _steps(steps, depth: int) -> list[str]:
    pad = "  " * depth
    out = []
    for s in steps:
        at = f"    # line {s.origin.line}"
        if s.kind == "send":
            out.append(f"{pad}send {s.template}{_args(s.args)}{at}")
        elif s.kind == "notify":
            out.append(f"{pad}notify {s.team} <{s.address}> with {s.template}{_args(s.args)}{at}")
        elif s.kind == "wait":
            out.append(f"{pad}wait {short_duration(s.seconds)}{at}")
        elif s.kind == "wait_for":
            where = f" where {s.where.src}" if s.where else ""
            out.append(f"{pad}wait for {s.event}{where} within {short_duration(s.seconds)}{at}")
            out.append(f"{pad}  received:")
            out.extend(_steps(s.received, depth + 2) or [f"{pad}    (nothing)"])
            out.append(f"{pad}  timeout:")
            out.extend(_steps(s.timeout, depth + 2) or [f"{pad}    (nothing)"])
        elif s.kind == "if":
            out.append(f"{pad}if {s.cond.src}{at}")
            out.extend(_steps(s.then, depth + 1))
            branch = s.else_
            # an else holding only an if is an else if (how `else if` compiles)
            while len(branch) == 1 and branch[0].kind == "if":
                inner = branch[0]
                out.append(f"{pad}else if {inner.cond.src}    # line {inner.origin.line}")
                out.extend(_steps(inner.then, depth + 1))
                branch = inner.else_
            if branch:
                out.append(f"{pad}else")
                out.extend(_steps(branch, depth + 1))
        elif s.kind == "split":
            out.append(f"{pad}split {s.experiment}{at}")
            for v in s.variants:
                out.append(f"{pad}  {v.name} {v.weight / 100:g}%")
                out.extend(_steps(v.steps, depth + 2))
        elif s.kind == "call":
            bind = f" as {s.bind}" if s.bind else ""
            args = ", ".join(f"{k}={v.src}" for k, v in s.args.items())
            attempts = s.max_attempts or "unlimited"
            out.append(
                f"{pad}call {s.activity}({args}){bind}"
                f"  [timeout {s.timeout_seconds}s, attempts {attempts}]{at}"
            )
        elif s.kind == "set":
            target = f"customer.{s.name}" if s.target == "customer" else s.name
            out.append(f"{pad}set {target} = {s.value.src}{at}")
        elif s.kind == "exit":
            out.append(f"{pad}exit{at}")
        elif s.kind == "wait_until":
            until = s.at.src if s.minutes is None else f"{s.minutes // 60:02d}:{s.minutes % 60:02d}"
            out.append(f"{pad}wait until {until}{at}")
    return out
