"""``lifecycle journeys``: every journey of the rules and what starts it.

In: ``--rules``/``--templates`` folders and ``--json``.
Out: one line per journey (name, trigger, where it is defined, its description) on
stdout, or with ``--json`` one JSON object per journey, and ``ExitCode.OK``; problems in
the rules are counted on stderr (``ExitCode.PROBLEMS`` when no journey compiled at all).

Also what other commands ask of the rules: ``print_journeys`` (what ``show`` and
``graph`` print when no journey is named) and ``event_types`` (the event types the rules
react to, which ``send-event`` checks an event against).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from engine.cli import ExitCode, add_content_arguments

EXAMPLES = (
    "lifecycle journeys",
    "lifecycle journeys --json",
    "lifecycle journeys --rules my-rules/",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_content_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per journey")


def run(args: argparse.Namespace) -> ExitCode:
    from engine.runtime.plans import compile_content

    result = compile_content(args.rules, args.templates)
    if args.json:
        for journey in sorted(result.plan.journeys.values(), key=lambda j: j.name):
            print(json.dumps(describe(journey)))
    else:
        print_journeys(result.plan, file=sys.stdout)
    if result.problems:
        print(
            f"warning: the rules have {len(result.problems)} problem(s); run `lifecycle validate`",
            file=sys.stderr,
        )
        if not result.plan.journeys:
            return ExitCode.PROBLEMS
    return ExitCode.OK


def triggers(journey) -> list:
    """A journey's triggers: one today (``Journey.trigger``); a list once journeys may
    have several (CONTRACT.md §7), read from ``Journey.triggers`` when the IR has it."""
    many = getattr(journey, "triggers", None)
    if many:
        return list(many)
    one = getattr(journey, "trigger", None)
    if isinstance(one, list | tuple):
        return list(one)
    return [one] if one is not None else []


def describe(journey) -> dict:
    """What ``journeys --json`` prints for one journey."""
    out = {
        "name": journey.name,
        "triggers": [str(t) for t in triggers(journey)],
        "trigger_kinds": [getattr(t, "kind", "event") for t in triggers(journey)],
        "origin": str(journey.origin),
        "description": journey.description,
    }
    if journey.goal:
        out["goal"] = journey.goal
    out["waits_for"] = sorted({s.event for s in _steps(journey.steps) if s.kind == "wait_for"})
    return out


def print_journeys(plan, file=None) -> None:
    """The journeys of ``plan`` as an aligned table: name, what starts it, where."""
    file = file or sys.stdout
    journeys = sorted(plan.journeys.values(), key=lambda j: j.name)
    if not journeys:
        print("no journeys", file=file)
        return
    rows = [(j.name, ", ".join(str(t) for t in triggers(j)), str(j.origin)) for j in journeys]
    name_w = max(len("journey"), *(len(r[0]) for r in rows))
    trig_w = max(len("trigger"), *(len(r[1]) for r in rows))
    print(f"{'journey':<{name_w}}  {'trigger':<{trig_w}}  defined at", file=file)
    import shutil
    import textwrap

    width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))
    indent = " " * (min(name_w, 24) + 4)
    for (name, trig, origin), journey in zip(rows, journeys, strict=True):
        print(f"{name:<{name_w}}  {trig:<{trig_w}}  {origin}", file=file)
        if journey.description:
            wrapped = textwrap.fill(
                journey.description, width, initial_indent=indent, subsequent_indent=indent
            )
            print(wrapped, file=file)


def list_journeys(result, command: str) -> ExitCode:
    """What ``show`` / ``graph`` do without a journey name: list the journeys (stdout)
    and say how to name one (stderr). ``ExitCode.PROBLEMS`` when there are none."""
    for problem in sorted(result.problems, key=lambda p: p.sort_key()):
        print(problem.render(), end="\n\n", file=sys.stderr)
    if not result.plan.journeys:
        print("error: no journeys to show; run `lifecycle validate`", file=sys.stderr)
        return ExitCode.PROBLEMS
    print_journeys(result.plan, file=sys.stdout)
    first = min(result.plan.journeys)
    print(f"\nname one: lifecycle {command} {first}", file=sys.stderr)
    return ExitCode.OK


def unknown_journey(result, name: str, problems) -> ExitCode:
    """What ``show`` / ``graph`` say for a journey name the rules do not have: the rules'
    ``problems`` (one may be why), the error, and a did-you-mean or the journeys there are."""
    from dsl.errors import did_you_mean

    for problem in problems:
        print(problem.render(), end="\n\n", file=sys.stderr)
    print(f"error: unknown journey '{name}'", file=sys.stderr)
    hint = did_you_mean(name, result.plan.journeys)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    elif result.plan.journeys:
        print("hint: journeys: " + ", ".join(sorted(result.plan.journeys)), file=sys.stderr)
    return ExitCode.PROBLEMS


def event_types(plan) -> dict[str, set[str]]:
    """Every event type the rules react to, by role: ``trigger`` (starts a journey),
    ``goal`` (ends one) and ``wait`` (a ``wait for`` step receives it)."""
    out: dict[str, set[str]] = {"trigger": set(), "goal": set(), "wait": set()}
    for journey in plan.journeys.values():
        for t in triggers(journey):
            if getattr(t, "kind", "event") == "event" and getattr(t, "event", ""):
                out["trigger"].add(t.event)
        if journey.goal:
            out["goal"].add(journey.goal)
        for step in _steps(journey.steps):
            if step.kind == "wait_for":
                out["wait"].add(step.event)
    return out


def _steps(steps) -> Iterator:
    """Every step, nested blocks included (whatever lists of steps a step holds)."""
    from dataclasses import fields, is_dataclass

    for step in steps:
        yield step
        if not is_dataclass(step):
            continue
        for f in fields(step):
            value = getattr(step, f.name)
            blocks = list(value.values()) if isinstance(value, dict) else [value]
            for block in blocks:
                if isinstance(block, list) and block and hasattr(block[0], "kind"):
                    yield from _steps(block)
                elif isinstance(block, list) and block and hasattr(block[0], "steps"):
                    for variant in block:  # a split's variants (dsl.ir.Variant)
                        yield from _steps(variant.steps)
