"""``lifecycle send-event EVENT|FILE|-``: put events into a running deployment.

In: one JSON event on the command line, or a JSON-lines file (``-`` for stdin).
Out: each event signalled to its customer's entity (started if needed); every event is
checked first (``engine.runtime.client.parse_event``: CONTRACT.md §2 limits), and nothing is
sent if any is bad (exit 1, each problem named by its line).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.cli import ExitCode


def add_arguments(p) -> None:
    p.add_argument("source", help="a JSON event, a JSON-lines file, or - for stdin")
    p.add_argument(
        "--address", help="Temporal address (default: $TEMPORAL_ADDRESS or 127.0.0.1:7233)"
    )
    p.add_argument(
        "--namespace", help="Temporal namespace (default: $TEMPORAL_NAMESPACE or default)"
    )
    p.add_argument(
        "--rules",
        help="rules folder whose schema: events must fit (default: $LIFECYCLE_RULES or rules)",
    )


def read_source(source: str) -> list[tuple[str, str]]:
    """(where, text) per event."""
    if source.lstrip().startswith("{"):
        return [("event", source)]
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    name = "stdin" if source == "-" else source
    return [
        (f"{name}:{n}", line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def run(args) -> ExitCode:
    from engine.runtime.client import EventError, parse_event

    try:
        items = read_source(args.source)
    except OSError as err:
        print(f"error: cannot read {args.source}: {err.strerror}", file=sys.stderr)
        return ExitCode.USAGE
    from dsl.schema import ERROR, check_event, load_schema
    from engine.runtime.settings import setting

    rules = Path(args.rules or setting("rules_dir"))
    schema = load_schema(rules) if rules.is_dir() else None
    events, problems = [], []
    for where, text in items:
        try:
            event = parse_event(text, where=where)
        except EventError as err:
            problems.append(str(err))
            continue
        # schema: (CONTRACT.md §7): a declared field of the wrong type refuses the event;
        # an undeclared one is a warning (an error with schema: {strict: true})
        bad = False
        for problem in check_event(schema, event):
            line = f"{where}: {problem.severity}: {problem.path}: {problem.message}"
            if problem.severity == ERROR:
                problems.append(line)
                bad = True
            else:
                print(line, file=sys.stderr)
        if not bad:
            events.append((where, event))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{len(problems)} bad event(s); nothing was sent", file=sys.stderr)
        return ExitCode.PROBLEMS
    return asyncio.run(_send(events, args))


async def _send(events: list[tuple[str, dict]], args) -> ExitCode:
    from engine.runtime.client import connect, send_event

    try:
        client = await connect(args.address, args.namespace)
    except RuntimeError as err:
        print(f"error: {err}\nhint: is `python worker.py` running?", file=sys.stderr)
        return ExitCode.FAILURE
    for n, (where, event) in enumerate(events):
        try:
            workflow_id = await send_event(client, event)
        except Exception as err:  # Temporal refused or went away part-way through
            print(
                f"{where}: error: not sent: {err}\n"
                f"{n} of {len(events)} event(s) were sent before it; fix the cause and send "
                "the file again (events with an id are processed once)",
                file=sys.stderr,
            )
            return ExitCode.FAILURE
        print(f"sent {event.get('id', '(no id)')} {event['type']} -> {workflow_id}")
    return ExitCode.OK
