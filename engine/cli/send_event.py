"""``lifecycle send-event EVENT|FILE|-``: put events into a running deployment.

In: one JSON event on the command line, or a JSON-lines file (``-`` for stdin).
Out: each event signalled to its customer's entity (started if needed); every event is
checked first (``engine.runtime.client.parse_event``: CONTRACT.md §2 limits), and nothing is
sent if any is bad (exit 1, each problem named by its line).

An event whose type no journey of the rules (``--rules``, default the worker's
``LIFECYCLE_RULES``) starts, ends or waits for is still sent (its ``customer`` part updates
the profile), with a note on stderr and a did-you-mean against the known types. An event
whose ``id`` the customer already has is not sent again: it is reported as a duplicate
(the entity's ``seen`` query; the entity would drop it anyway). Temporal is reached as the
worker reaches it (``TEMPORAL_ADDRESS``, else ``LIFECYCLE_TEMPORAL_PORT``); when nothing
answers within ``CLI_CONNECT_WAIT`` seconds, the error says how to start it (exit 3).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.cli import ExitCode

EXAMPLES = (
    """lifecycle send-event '{"type": "customer.signed_up", "customer_id": "c-1", """
    """"customer": {"name": "Ann", "email": "ann@example.test", "marketing_opt_in": true}}'""",
    """lifecycle send-event '{"id": "evt-7", "type": "order.placed", "customer_id": "c-1", """
    """"data": {"order_id": "o-1"}}'""",
    "lifecycle send-event events.jsonl",
    "cat events.jsonl | lifecycle send-event -",
    "LIFECYCLE_TEMPORAL_PORT=17233 lifecycle send-event events.jsonl   (a worker on port 17233)",
)


def add_arguments(p) -> None:
    p.add_argument("source", help="a JSON event, a JSON-lines file, or - for stdin")
    p.add_argument(
        "--address",
        help="Temporal address (default: TEMPORAL_ADDRESS, else 127.0.0.1 on"
        " LIFECYCLE_TEMPORAL_PORT, 7233: where the worker is)",
    )
    p.add_argument(
        "--namespace", help="Temporal namespace (default: TEMPORAL_NAMESPACE or default)"
    )
    p.add_argument(
        "--rules",
        help="rules folder to check events against: their types (a note for a type no journey"
        " uses) and their schema: (default: LIFECYCLE_RULES or rules/)",
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


# Event types the engine itself acts on whatever the rules say (CONTRACT.md §5, §6): no
# note for them. ``identify`` is what a Segment identify call becomes: a profile update.
ENGINE_EVENT_TYPES = frozenset(
    {"identify", "customer.unsubscribed", "customer.resubscribed", "email.complained"}
)


def unknown_type_notes(events: list[tuple[str, dict]], rules: str | None) -> list[str]:
    """A note per event type that no journey starts on, ends on or waits for, with a
    did-you-mean against the journeys' triggers; none when the rules cannot be read."""
    from dsl.errors import did_you_mean
    from engine.cli.journeys import event_types
    from engine.runtime.plans import compile_content
    from engine.runtime.settings import setting

    rules = rules or setting("rules_dir")
    try:
        # the plan only: no sample renders, so no render processes for a one-shot command
        result = compile_content(rules, setting("templates_dir"), renders=False)
    except Exception:  # noqa: BLE001 - a hint only: the worker's rules may live elsewhere
        return []
    if not result.plan.journeys:
        return []
    known = event_types(result.plan)
    every = known["trigger"] | known["goal"] | known["wait"]
    notes, done = [], set()
    for where, event in events:
        etype = event["type"]
        if etype in every or etype in done or etype in ENGINE_EVENT_TYPES:
            continue
        done.add(etype)
        hint = did_you_mean(etype, known["trigger"]) or did_you_mean(etype, every)
        triggers = ", ".join(sorted(known["trigger"]))
        notes.append(
            f"{where}: note: no journey in {rules} starts on '{etype}', and none waits for it"
            f" (it is sent anyway: its customer part still updates the profile)\n"
            + (f"hint: {hint}" if hint else f"hint: journeys start on: {triggers}")
        )
    return notes


async def _send(events: list[tuple[str, dict]], args) -> ExitCode:
    from engine.runtime.client import CLI_CONNECT_WAIT, already_seen, connect, send_event

    try:
        client = await connect(args.address, args.namespace, wait=CLI_CONNECT_WAIT)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    for note in unknown_type_notes(events, args.rules):
        print(note, file=sys.stderr)
    check = True  # asking stops after one unanswered question (no worker running)
    for n, (where, event) in enumerate(events):
        if check and event.get("id"):
            seen = await already_seen(client, event)
            if seen:
                print(
                    f"duplicate {event['id']} {event['type']} -> customer {event['customer_id']}"
                    " already has an event with this id; not sent again"
                )
                continue
            if seen is None:
                check = False
                print(
                    "note: no worker answered, so duplicates of earlier event ids are not"
                    " reported; the events are sent, and the worker drops duplicates itself",
                    file=sys.stderr,
                )
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
