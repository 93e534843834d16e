"""``lifecycle simulate EVENTS.jsonl``: the real workflows on simulated time.

In: a JSON-lines events file (``at`` absolute or ``+2d`` style offsets), rules, templates.
Out: a day-by-day timeline per customer (default) or, with ``--json``, one JSON object per
action in simulated-time order (CONTRACT.md §4). Exit 1 on bad events or rules, and when
a journey failed: each failure is printed on stderr with the rule step (``file:line``)
and, for a template, its line, instead of the worker's tracebacks (the SDK's log is kept
back and shown only if the simulation itself breaks, or at ``LOG_LEVEL=DEBUG``). Exit 3
when the simulation could not run.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from dsl.clock import parse_iso
from engine.cli import ExitCode, add_content_arguments

EXAMPLES = (
    "lifecycle simulate samples/events.jsonl",
    "lifecycle simulate samples/events.jsonl --until 30d --json",
    "lifecycle simulate events.jsonl --start 2026-03-01T00:00:00Z --rules my-rules/",
)


def add_arguments(p) -> None:
    p.add_argument("events", help="JSON-lines file of events")
    add_content_arguments(p)
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
    counts: dict[str, int] = defaultdict(int)
    not_sent: dict[str, int] = defaultdict(int)
    for a in result.actions:
        if a["action"] in ("send", "notify") and not _went_out(a):
            not_sent[a.get("status") or "?"] += 1
        else:
            counts[a["action"]] += 1
    failed = sum(1 for a in result.actions if a["action"] == "end" and a.get("reason") == "failed")
    summary = (
        f"{len(by_customer)} customers, {counts['start']} journeys started, "
        f"{counts['send']} emails, {counts['notify']} notifications, {counts['call']} calls, "
        f"{len(result.emails)} messages received by the SMTP sink"
    )
    if not_sent:
        summary += "; not sent: " + ", ".join(f"{n} {k}" for k, n in sorted(not_sent.items()))
    if failed:
        summary += f"; {failed} journey{'s' if failed != 1 else ''} FAILED"
    out.append(summary)
    return "\n".join(out)


def _went_out(a: dict) -> bool:
    """A send or notify that reached the SMTP server (``duplicate``: an earlier attempt did)."""
    return a.get("status") in (None, "sent", "duplicate")


def _describe(a: dict) -> str:
    action = a["action"]
    if action == "start":
        return "started (holdout)" if a.get("holdout") else "started"
    if action == "split":
        return f"split  {a.get('experiment')}: {a.get('variant')}"
    if action in ("send", "notify"):
        if not _went_out(a):
            why = a.get("reason") or a.get("detail") or ""
            return f"{action:<6} {a.get('template')}: not sent, {a.get('status')}" + (
                f" ({why})" if why else ""
            )
        target = f"{a.get('team')} <{a.get('to')}>" if action == "notify" else a.get("to")
        subject = f'"{a.get("subject")}"' if a.get("subject") else ""
        return f"{action:<6} {a.get('template')} -> {target}: {subject}"
    if action == "defer":
        return f"defer  {a.get('template')} until {a.get('until')}: {a.get('detail')}"
    if action == "call":
        return f"call   {a.get('activity')} -> {a.get('result')}"
    if action == "end":
        error = f": {a['error']}" if a.get("error") else ""
        conv = {True: ", converted", False: ", not converted"}.get(a.get("converted"), "")
        return f"end    ({a.get('reason')}{conv}){error}"
    return action


def read_inputs(args) -> tuple[list, datetime, timedelta] | None:
    """(events, start, until) from ``EVENTS --start --until`` (also ``lifecycle report``'s);
    None after printing what is wrong."""
    from engine.tools.simulator import SimulationError, parse_offset, parse_when, read_events

    try:
        start = parse_when(args.start, default_start()) if args.start else default_start()
        until_text = args.until if args.until.startswith("+") else "+" + args.until
        until = parse_offset(until_text)
        if until is None:
            raise SimulationError(f"bad --until {args.until!r}: use e.g. 30d, +90d, +1w")
        return read_events(args.events, start), start, until
    except (SimulationError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def run(args) -> ExitCode:
    inputs = read_inputs(args)
    if inputs is None:
        return ExitCode.PROBLEMS
    return asyncio.run(_run(args, *inputs))


async def _run(args, events, start: datetime, until: timedelta) -> ExitCode:
    from engine.runtime.plans import PlanError
    from engine.runtime.settings import setting
    from engine.tools.simulator import SimulationError, format_json_lines, simulate

    show_progress = sys.stderr.isatty()
    held = _HoldBack() if setting("log_level") != "DEBUG" else None

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
        if held:
            held.show()
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    finally:
        if held:
            held.release()
    if show_progress:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    if args.json:
        sys.stdout.write(format_json_lines(result))
    else:
        print(format_timeline(result))
    failures = [a for a in result.actions if a["action"] == "end" and a.get("reason") == "failed"]
    if failures:
        sys.stdout.flush()
        print(format_failures(failures, args.templates), file=sys.stderr)
        return ExitCode.PROBLEMS
    return ExitCode.OK


class _HoldBack(logging.Handler):
    """Keeps the Temporal SDK's log (an activity's traceback for every failed attempt)
    off the terminal while a simulation runs: a failed journey is reported from its
    journal line instead. ``show`` prints the last lines, without tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger("temporalio")
        self.propagate = self.logger.propagate
        self.logger.addHandler(self)
        self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.records = [*self.records[-19:], record]

    def show(self) -> None:
        for record in self.records[-5:]:
            cause = record.exc_info[1] if record.exc_info else None
            print(
                f"worker: {record.getMessage()}" + (f": {cause}" if cause else ""),
                file=sys.stderr,
            )

    def release(self) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = self.propagate


# "TemplateError: welcome.html.j2:4: 'dict object' has no attribute 'plan'": the
# journal's text of a template failure (engine.delivery.email_activity raises it).
_TEMPLATE_FAILURE = re.compile(r"^(?:\w+: )?(?P<template>[^\s:]+\.j2):(?P<line>\d+): (?P<msg>.*)$")


def format_failures(failures: list[dict], templates_dir: str) -> str:
    """Each distinct failure once (the rule step, the error, the template line), with the
    customers it happened to."""
    from pathlib import Path

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for a in failures:
        groups[(a["journey"], a.get("origin", ""), a.get("error", ""))].append(a)
    n = len(failures)
    out = [f"error: {n} journey{'s' if n != 1 else ''} failed"]
    for (journey, origin, error), hits in groups.items():
        who = ", ".join(sorted({h["customer_id"] for h in hits})[:5])
        more = len({h["customer_id"] for h in hits}) - 5
        out.append(
            f"\njourney {journey} failed for {who}" + (f" and {more} more" if more > 0 else "")
        )
        step = _source_line(origin)
        out.append(f"  {origin}: the step that failed" + (f"\n      {step}" if step else ""))
        m = _TEMPLATE_FAILURE.match(error)
        if m:
            path = Path(templates_dir) / m["template"]
            out.append(f"  {path.as_posix()}:{m['line']}: error: {m['msg']}")
            line = _source_line(f"{path}:{m['line']}")
            if line:
                out.append(f"      {line}")
        else:
            out.append(f"  error: {error or 'unknown'}")
    return "\n".join(out)


def _source_line(origin: str) -> str | None:
    """The text of ``PATH:LINE[:COL]``, stripped; None when it cannot be read."""
    from pathlib import Path

    m = re.match(r"^(?P<path>.+?):(?P<line>\d+)(?::\d+)?$", origin or "")
    if not m:
        return None
    try:
        lines = Path(m["path"]).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    n = int(m["line"])
    return lines[n - 1].strip() if 0 < n <= len(lines) else None
