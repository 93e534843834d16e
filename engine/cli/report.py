"""``lifecycle report EVENTS.jsonl`` and ``lifecycle report --live``: conversions, holdouts
and experiments (CONTRACT.md §8), over a simulation or over a running deployment.

In: the same arguments as ``lifecycle simulate`` (events file, ``--rules``,
``--templates``, ``--start``, ``--until``, ``--json``); or ``--live`` with ``--since`` and
``--journey``, which reads the durable record the workers keep in the ledger's database
(``DATABASE_URL``, else the SQLite ledger under ``LIFECYCLE_DATA``;
``engine.runtime.record``). Out: the journal lines are measured (``engine.tools.report``):
per journey entered, holdout, converted and rate, messages by template and status; per
experiment and variant entered, converted, rate, the difference over the first variant
with its 95 % interval, lift, and a winner only when significant. A small table, or one
JSON object with ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

from engine.cli import ExitCode
from engine.cli import simulate as simulate_cli

EXAMPLES = (
    "lifecycle report samples/events.jsonl",
    "lifecycle report events.jsonl --until 30d --json",
    "lifecycle report --live",
    "lifecycle report --live --since 30d --journey welcome-series",
)
READ_TIMEOUT = 120.0  # seconds a live report may wait for the database


def add_arguments(p) -> None:
    simulate_cli.add_arguments(p)
    for action in p._actions:
        if action.dest == "json":
            action.help = "the report as one JSON object"
        elif action.dest == "events":
            action.nargs = "?"
            action.help = "JSON-lines file of events to simulate (or --live)"
    p.add_argument(
        "--live",
        action="store_true",
        help="report on the running deployment: the durable record in the ledger's"
        " database (DATABASE_URL, else the SQLite ledger under LIFECYCLE_DATA)",
    )
    p.add_argument(
        "--since",
        help="with --live: only what was recorded since then, ISO 8601 or an age such as"
        " 30d or 12h (default: everything)",
    )
    p.add_argument("--journey", help="only this journey")


def run(args) -> ExitCode:
    if args.live:
        if args.events:
            print("error: give EVENTS (a simulation) or --live, not both", file=sys.stderr)
            return ExitCode.USAGE
        return asyncio.run(_live(args))
    if not args.events:
        print(
            "error: give a JSON-lines file of events to simulate, or --live to report on"
            " the running deployment",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    if args.since:
        print("error: --since goes with --live", file=sys.stderr)
        return ExitCode.USAGE
    inputs = simulate_cli.read_inputs(args)
    if inputs is None:
        return ExitCode.PROBLEMS
    return asyncio.run(_run(args, *inputs))


def _print(args, actions: list[dict], heading: str = "") -> ExitCode:
    from engine.tools.report import build_report, format_report

    if args.journey:
        actions = [a for a in actions if a.get("journey") == args.journey]
    report = build_report(actions)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if heading:
            print(heading)
        sys.stdout.write(format_report(report))
    return ExitCode.OK


async def _run(args, events, start: datetime, until: timedelta) -> ExitCode:
    from engine.runtime.plans import PlanError
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
    return _print(args, result.actions)


def since_instant(text: str | None, now: datetime | None = None) -> str:
    """``--since`` as the ISO 8601 UTC text the record's times compare with ("" = all):
    an age (``30d``, ``12h``, ``2w``) before ``now``, or a date or time."""
    from dsl.clock import iso
    from engine.tools.simulator import SimulationError, parse_offset, parse_when

    if not text:
        return ""
    now = now or datetime.now(UTC)
    age = parse_offset("+" + text.lstrip("+")) if text[:1].isdigit() or text[:1] == "+" else None
    if age is not None:
        return iso(now - age)
    try:
        return iso(parse_when(text, now))
    except SimulationError:
        raise ValueError(
            f"bad --since {text!r}: use an age such as 30d or 12h, or a date such as 2026-11-01"
        ) from None


async def _live(args) -> ExitCode:
    from engine.delivery.ledger import LedgerError, open_ledger
    from engine.runtime.record import lines_of
    from engine.runtime.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        since = since_instant(args.since)
    except (SettingsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.PROBLEMS
    if settings.database_url:
        where = "PostgreSQL (DATABASE_URL)"
    else:
        where = str(settings.ledger_file)
        if not settings.ledger_file.exists():
            print(
                f"error: no record at {where}: no worker has run with LIFECYCLE_DATA="
                f"{settings.data_dir} (start one with ./run, or set LIFECYCLE_DATA or"
                " DATABASE_URL to where the workers keep their ledger)",
                file=sys.stderr,
            )
            return ExitCode.FAILURE
    try:
        ledger = await open_ledger(
            settings.database_url or None, settings.ledger_file, timeout=READ_TIMEOUT
        )
        try:
            rows = await ledger.read_journal(since)
        finally:
            await ledger.close()
    except LedgerError as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    span = f" since {since}" if since else ""
    heading = f"live: the durable record in {where}{span}\n"
    return _print(args, lines_of(rows), heading)
