"""``lifecycle report EVENTS.jsonl``: conversions, holdouts and experiments over a
simulation (CONTRACT.md §8).

In: the same arguments as ``lifecycle simulate`` (events file, ``--rules``,
``--templates``, ``--start``, ``--until``, ``--json``). Out: the events are simulated
(``engine.tools.simulator``) and measured (``engine.tools.report``): per journey entered,
holdout, converted and rate, messages by template and status; per experiment and variant
entered, converted, rate, the difference over the first variant with its 95 % interval,
lift, and a winner only when significant. A small table, or one JSON object with
``--json``. (``--live``, over a running deployment, is not built yet.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta

from engine.cli import ExitCode
from engine.cli import simulate as simulate_cli

EXAMPLES = (
    "lifecycle report samples/events.jsonl",
    "lifecycle report events.jsonl --until 30d --json",
)


def add_arguments(p) -> None:
    simulate_cli.add_arguments(p)
    for action in p._actions:
        if action.dest == "json":
            action.help = "the report as one JSON object"


def run(args) -> ExitCode:
    inputs = simulate_cli.read_inputs(args)
    if inputs is None:
        return ExitCode.PROBLEMS
    return asyncio.run(_run(args, *inputs))


async def _run(args, events, start: datetime, until: timedelta) -> ExitCode:
    from engine.runtime.plans import PlanError
    from engine.tools.report import build_report, format_report
    from engine.tools.simulator import SimulationError, simulate

    try:
        result = await simulate(events, args.rules, args.templates, start, until)
    except PlanError as err:
        print(err, file=sys.stderr)
        print("the rules do not compile; run `lifecycle validate`", file=sys.stderr)
        return ExitCode.PROBLEMS
    except SimulationError as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    report = build_report(result.actions)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(format_report(report))
    return ExitCode.OK
