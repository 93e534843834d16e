"""``lifecycle simulate EVENTS.jsonl``: the real workflows on simulated time.

In: a JSON-lines events file (``at`` absolute or ``+2d`` style offsets), rules, templates.
Out: a day-by-day timeline per customer (default) or, with ``--json``, one JSON object per
action in simulated-time order (CONTRACT.md §4). Exit 1 on bad events or rules.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from dsl.clock import parse_iso
from engine.cli import ExitCode
from engine.runtime.config import DEFAULT_RULES_DIR, DEFAULT_TEMPLATES_DIR


def add_arguments(p) -> None:
    p.add_argument("events", help="JSON-lines file of events")
    p.add_argument("--rules", default=DEFAULT_RULES_DIR)
    p.add_argument("--templates", default=DEFAULT_TEMPLATES_DIR)
    p.add_argument("--start", help="simulated start, ISO 8601 (default: today 00:00 UTC)")
    p.add_argument("--until", default="+90d", help="horizon, e.g. 30d or +90d (default +90d)")
    p.add_argument("--json", action="store_true", help="one JSON object per action")


def default_start() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def format_timeline(result) -> str:
    """Per customer, day by day: what was sent (with subjects), called and ended."""
    by_customer: dict[str, list[dict]] = defaultdict(list)
    for a in result.actions:
        by_customer[a["customer_id"]].append(a)
    out = []
    start = result.start
    for cid, actions in by_customer.items():
        out.append(f"customer {cid}")
        last_day = None
        for a in actions:
            at = parse_iso(a["at"])
            day = (at - start).days
            if day != last_day:
                out.append(f"  day {day:>3}  {at:%a %d %b}")
                last_day = day
            out.append(f"    {at:%H:%M}  {a['journey']:<22} {_describe(a)}")
        out.append("")
    counts = defaultdict(int)
    for a in result.actions:
        counts[a["action"]] += 1
    out.append(
        f"{len(by_customer)} customers, {counts['start']} journeys started, "
        f"{counts['send']} emails, {counts['notify']} notifications, {counts['call']} calls, "
        f"{len(result.emails)} messages received by the SMTP sink"
    )
    return "\n".join(out)


def _describe(a: dict) -> str:
    action = a["action"]
    if action == "start":
        return "started"
    if action in ("send", "notify"):
        target = f"{a.get('team')} <{a.get('to')}>" if action == "notify" else a.get("to")
        status = "" if a.get("status") in ("sent", "duplicate") else f" [{a.get('status')}]"
        if a.get("status") == "suppressed":
            status = f" [suppressed: {a.get('reason')}]"
        subject = f'"{a.get("subject")}"' if a.get("subject") else ""
        return f"{action:<6} {a.get('template')} -> {target}: {subject}{status}"
    if action == "defer":
        return f"defer  {a.get('template')} until {a.get('until')}: {a.get('detail')}"
    if action == "call":
        return f"call   {a.get('activity')} -> {a.get('result')}"
    if action == "end":
        error = f": {a['error']}" if a.get("error") else ""
        return f"end    ({a.get('reason')}){error}"
    return action


def run(args) -> ExitCode:
    from engine.tools.simulator import SimulationError, parse_offset, parse_when, read_events

    try:
        start = parse_when(args.start, default_start()) if args.start else default_start()
        until_text = args.until if args.until.startswith("+") else "+" + args.until
        until = parse_offset(until_text)
        if until is None:
            raise SimulationError(f"bad --until {args.until!r}: use e.g. 30d, +90d, +1w")
        events = read_events(args.events, start)
    except (SimulationError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.PROBLEMS
    return asyncio.run(_run(args, events, start, until))


async def _run(args, events, start: datetime, until: timedelta) -> ExitCode:
    from engine.runtime.plans import PlanError
    from engine.tools.simulator import SimulationError, format_json_lines, simulate

    show_progress = sys.stderr.isatty()

    def progress(now: datetime, sent: int) -> None:
        if show_progress:
            day = (now - start).days
            print(f"\rsimulating: day {day}, {sent}/{len(events)} events", end="", file=sys.stderr)

    try:
        result = await simulate(events, args.rules, args.templates, start, until, progress=progress)
    except PlanError as err:
        print(err, file=sys.stderr)
        print("the rules do not compile; run `lifecycle validate`", file=sys.stderr)
        return ExitCode.PROBLEMS
    except SimulationError as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    if show_progress:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    if args.json:
        sys.stdout.write(format_json_lines(result))
    else:
        print(format_timeline(result))
    return ExitCode.OK
