"""``lifecycle status CUSTOMER_ID``: a customer's profile, active journeys and where each
waits, and the triggers scheduled for them (birthday, renewal, inactivity).

In: a customer id. Out: the entity's ``status`` query, readable or as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from engine.cli import ExitCode

EXAMPLES = (
    "lifecycle status c-1",
    "lifecycle status c-1 --json",
    "lifecycle status c-1 --history 50",
)


# How long to wait for a worker to answer; a running worker answers in milliseconds.
STATUS_WAIT = 5.0


def add_arguments(p) -> None:
    p.add_argument("customer_id")
    p.add_argument("--json", action="store_true", help="print the raw status as JSON")
    p.add_argument("--history", type=int, default=10, help="recent actions to show (default 10)")
    add_connection_arguments(p)


def add_connection_arguments(p) -> None:
    """--address and --namespace: where the worker's Temporal is (status, why)."""
    p.add_argument(
        "--address",
        help="Temporal address (default: TEMPORAL_ADDRESS, else 127.0.0.1 on"
        " LIFECYCLE_TEMPORAL_PORT, 7233: where the worker is)",
    )
    p.add_argument(
        "--namespace", help="Temporal namespace (default: TEMPORAL_NAMESPACE or default)"
    )


def format_status(status: dict, history: int = 10) -> str:
    lines = [f"customer {status['customer_id']} (events processed: {status['events_processed']})"]
    lines.append("profile:")
    for key, value in sorted(status["profile"].items()):
        lines.append(f"  {key}: {json.dumps(value)}")
    lines.append(f"active journeys: {len(status['active']) or 'none'}")
    for inst in status["active"]:
        label = inst["journey"] + (f" [{inst['key']}]" if inst["key"] else "")
        wait = inst.get("waiting")
        if wait and wait["kind"] == "timer":
            where = f"waiting until {wait['deadline']} ({wait['origin']})"
        elif wait and wait["kind"] == "defer":
            # A send held by the contact policy (CONTRACT.md §6): until when, and why.
            where = f"send waiting until {wait['deadline']}: {wait['detail']} ({wait['origin']})"
        elif wait:
            where = f"waiting for {wait['event']} until {wait['deadline']} ({wait['origin']})"
        else:
            where = inst["doing"] or f"at step {inst['position']}"
        lines.append(f"  {label}: {where}; started {inst['started_at']}")
    scheduled = status.get("scheduled") or []  # triggers due (CONTRACT.md §7)
    if scheduled:
        lines.append("scheduled triggers:")
        for item in scheduled:
            lines.append(f"  {item['local']} ({item['trigger']})")
    recent = status["journal"][-history:] if history else []
    if recent:
        total = status.get("journal_total", len(status["journal"]))
        shown = f" (the latest {len(recent)} of {total}; --history N for more)"
        lines.append(f"recent actions{shown if total > len(recent) else ''}:")
        for a in recent:
            detail = a.get("subject") or a.get("reason") or a.get("activity") or ""
            if a["action"] == "defer":
                detail = f"until {a.get('until')}: {a.get('detail', '')}"
            if a.get("status") not in (None, "sent"):
                detail = f"[{a['status']}] {detail}".strip()
            extra = a.get("template") or ""
            lines.append(
                f"  {a['at']}  {a['journey']:<24} {a['action']:<7} {extra} {detail}".rstrip()
            )
    return "\n".join(lines)


def run(args) -> ExitCode:
    return asyncio.run(_run(args))


async def _run(args) -> ExitCode:
    status = await fetch_status(args)
    if isinstance(status, ExitCode):
        return status
    print(json.dumps(status, indent=2) if args.json else format_status(status, args.history))
    return ExitCode.OK


async def fetch_status(args) -> dict | ExitCode:
    """The customer's ``status`` query (``args``: customer_id, address, namespace), or the
    exit code after saying on stderr why there is none (unreachable, unknown customer)."""
    from temporalio.service import RPCError

    from engine.runtime.client import CLI_CONNECT_WAIT, connect, diagnose, get_status

    try:
        client = await connect(args.address, args.namespace, wait=CLI_CONNECT_WAIT)
        status = await get_status(client, args.customer_id, timeout=STATUS_WAIT)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.FAILURE
    except RPCError:
        try:
            print(f"error: {await diagnose(client, args.customer_id)}", file=sys.stderr)
        except RPCError as err:
            print(f"error: customer {args.customer_id!r}: {err.message}", file=sys.stderr)
        return ExitCode.PROBLEMS
    return status
