"""``lifecycle why CUSTOMER_ID [--journey J] [--json]``: why a customer got, or did not get,
each journey and each message (CONTRACT.md §8).

In: a customer id; the entity's ``status`` query (its ``why`` key: the latest entry
decisions and events, kept bounded by ``workflows.state``; its journal and the sends held
now). Out: per recent event (or trigger: inactivity, a date, entering), each journey it
could start and why it did or did not (the ``when`` with the values of its operands,
re-entry and until when, an active instance, a bound, the holdout); per message, why it
was sent, deferred (until when, and why), suppressed or not sent. ``explain(status)`` builds
that as data (what ``--json`` prints); ``format_why`` prints the same as text.
"""

from __future__ import annotations

import asyncio
import json

from engine.cli import ExitCode
from engine.cli.status import add_connection_arguments, fetch_status

EXAMPLES = (
    "lifecycle why c-1",
    "lifecycle why c-1 --journey welcome-series",
    "lifecycle why c-1 --json",
)

MESSAGE_ACTIONS = ("send", "notify", "defer")


def add_arguments(p) -> None:
    p.add_argument("customer_id")
    p.add_argument("--journey", metavar="J", help="only this journey's entries and messages")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    add_connection_arguments(p)


# ---------------------------------------------------------------- explanation (data)


def _value(value) -> str:
    if isinstance(value, dict) and set(value) == {"omitted"}:
        return f"({value['omitted']}, not kept)"  # workflows.state.summarise
    return json.dumps(value, ensure_ascii=False)


def _when_text(decision: dict, held: bool) -> str:
    values = decision.get("values") or {}
    shown = ", ".join(f"{name} = {_value(v)}" for name, v in values.items())
    text = f"when {decision['when']} was {'true' if held else 'false'}"
    return f"{text}: {shown}" if shown else text


def _share(basis_points) -> str:
    pct = basis_points / 100
    return f"{pct:g}%"


def _decision_text(d: dict, ends: dict[str, dict], running: set[str]) -> str:
    """One sentence: why the journey did or did not start."""
    reason = d.get("reason", "")
    key = f" for key {json.dumps(d['key'])}" if d.get("key") else ""
    if d["outcome"] == "started":
        text = f"started{key} ({d.get('instance', '')})"
        if d.get("holdout"):
            text += f", in the holdout ({_share(d.get('holdout_share', 0))}): it is sent nothing"
        elif d.get("holdout_share"):
            text += f", not in the holdout ({_share(d['holdout_share'])})"
        end = ends.get(d.get("instance", ""))
        if end is not None:
            text += f"; ended {end['at']} ({_end_reason(end)})"
        elif d.get("instance") in running:
            text += "; still running"
        if d.get("when"):
            text += f"; {_when_text(d, True)}"
        return text
    if reason == "when":
        return f"not started: {_when_text(d, False)}"
    if reason == "reentry":
        if d.get("until"):
            return f"not started: it started{key} before; re-entry lets it start again from {d['until']}"
        last = f" (at {d['last_entry']})" if d.get("last_entry") else ""
        return f"not started: it started{key} before{last} and its re-entry is never"
    if reason == "active":
        return f"not started: it is already active{key} ({d.get('instance', '')})"
    if reason == "state_limit":
        from workflows.state import STATE_START_LIMIT

        return f"not started: the customer's state is past {STATE_START_LIMIT} bytes (state_limit)"
    if reason == "active_limit":
        from workflows.state import ACTIVE_LIMIT

        return f"not started: {ACTIVE_LIMIT} journeys are in flight for the customer (active_limit)"
    return f"not started: {reason}"


def _end_reason(end: dict) -> str:
    reason = end.get("reason", "")
    if "converted" in end:
        reason += ", converted" if end["converted"] else ", not converted"
    if end.get("error"):
        reason += f": {end['error']}"
    return reason


def _message_text(line: dict) -> tuple[str, str]:
    """(outcome, sentence) for a journal line of a send, notify or defer."""
    detail = line.get("detail") or ""
    reason = line.get("reason") or ""
    if line["action"] == "defer":
        text = f"deferred until {line.get('until')} ({reason})"
        return "deferred", f"{text}: {detail}" if detail else text
    status = line.get("status") or "sent"
    if status in ("sent", "duplicate"):
        to = line.get("to") or ""
        subject = (
            f": {json.dumps(line['subject'], ensure_ascii=False)}" if line.get("subject") else ""
        )
        once = " (once: a retry found it in the sent-ledger)" if status == "duplicate" else ""
        return "sent", f"sent to {to}{subject}{once}"
    if status == "suppressed":
        text = f"suppressed ({reason})"
        return "suppressed", f"{text}: {detail}" if detail else text
    if status == "skipped":
        return "not_sent", f"not sent: {detail or 'skipped'}"
    if status == "bounced":
        text = "bounced (a hard bounce: the address is suppressed from now on)"
        return "bounced", f"{text}: {detail}" if detail else text
    return status, f"{status}{': ' + detail if detail else ''}"


def _message(line: dict) -> dict:
    outcome, why = _message_text(line)
    item = {
        "at": line["at"],
        "journey": line.get("journey", ""),
        "instance": line.get("instance", ""),
        "action": "send" if line["action"] == "defer" else line["action"],
        "template": line.get("template", ""),
        "outcome": outcome,
    }
    for name in ("reason", "until", "detail", "to", "subject", "origin"):
        if line.get(name):
            item[name] = line[name]
    item["why"] = why
    return item


def explain(status: dict, journey: str | None = None) -> dict:
    """What ``lifecycle why`` says, as data: bounds, entries (an event or a trigger with
    the journeys it could start and why each did or did not) and messages."""
    why = status.get("why") or {}
    decisions = why.get("decisions", [])
    events = why.get("events", [])
    journal = status.get("journal", [])
    ends = {line.get("instance", ""): line for line in journal if line.get("action") == "end"}
    running = {inst["id"] for inst in status.get("active", [])}
    wanted = [d for d in decisions if journey in (None, d["journey"])]

    def journey_item(d: dict) -> dict:
        item = {k: v for k, v in d.items() if k not in ("at", "event", "trigger", "n")}
        item["why"] = _decision_text(d, ends, running)
        return item

    entries: list[dict] = []
    by_event: dict[int, dict] = {}
    for e in events:
        entry = {"at": e["at"], "event": e, "trigger": e.get("type", ""), "journeys": []}
        by_event[e["n"]] = entry
        entries.append(entry)
    for d in wanted:
        n = d.get("event")
        if n is not None:
            entry = by_event.get(n)
            if entry is None:  # its event fell out of the bounded list; the decision did not
                kept = {
                    "n": n,
                    "at": d["at"],
                    "type": d.get("trigger", ""),
                    "id": "",
                    "kept": False,
                }
                entry = by_event[n] = {
                    "at": d["at"],
                    "event": kept,
                    "trigger": d.get("trigger", ""),
                    "journeys": [],
                }
                entries.append(entry)
        else:  # a trigger that is not an event (inactivity, a date, entering)
            last = entries[-1] if entries else None
            if (
                last is not None
                and last["event"] is None
                and (last["at"], last["trigger"]) == (d["at"], d.get("trigger", ""))
            ):
                entry = last
            else:
                entry = {
                    "at": d["at"],
                    "event": None,
                    "trigger": d.get("trigger", ""),
                    "journeys": [],
                }
                entries.append(entry)
        entry["journeys"].append(journey_item(d))
    entries.sort(key=lambda entry: entry["at"])  # stable: same-instant order kept
    if journey is not None:
        entries = [entry for entry in entries if entry["journeys"]]

    messages = [
        _message(line)
        for line in journal
        if line.get("action") in MESSAGE_ACTIONS and journey in (None, line.get("journey"))
    ]
    for line in journal:  # a journey that failed (a send that could not be made, say)
        if line.get("action") == "end" and line.get("reason") == "failed":
            if journey in (None, line.get("journey")):
                messages.append(
                    {
                        "at": line["at"],
                        "journey": line.get("journey", ""),
                        "instance": line.get("instance", ""),
                        "action": "end",
                        "outcome": "failed",
                        "why": f"the journey failed: {line.get('error', '')}".rstrip(": "),
                    }
                )
    for inst in status.get("active", []):  # sends the contact policy holds right now
        wait = inst.get("waiting") or {}
        if wait.get("kind") != "defer" or journey not in (None, inst["journey"]):
            continue
        held = [m for m in messages if m["instance"] == inst["id"] and m["outcome"] == "deferred"]
        reason, detail = wait.get("reason", ""), wait.get("detail", "")
        text = f"deferred until {wait['deadline']} ({reason})" + (f": {detail}" if detail else "")
        item = held[-1] if held else None
        if item is None:  # its defer line fell out of the bounded journal
            item = {"at": status.get("now", ""), "journey": inst["journey"], "action": "send"}
            item.update(instance=inst["id"], template="", origin=wait.get("origin", ""))
            messages.append(item)
        item.update(outcome="held", reason=reason, until=wait["deadline"], detail=detail)
        item["why"] = f"{text}; still held"
    messages.sort(key=lambda m: m["at"])  # stable

    return {
        "customer_id": status.get("customer_id", ""),
        "journey": journey,
        "now": status.get("now", ""),
        "events": {"kept": len(events), "total": why.get("events_total", len(events))},
        "decisions": {"kept": len(decisions), "total": why.get("decisions_total", len(decisions))},
        "journal": {"kept": len(journal), "total": status.get("journal_total", len(journal))},
        "entries": entries,
        "messages": messages,
    }


# ---------------------------------------------------------------- text


def _bound(what: str, counts: dict) -> str | None:
    if counts["total"] > counts["kept"]:
        return f"the last {counts['kept']} of {counts['total']} {what}"
    return None


def format_why(report: dict) -> str:
    journey = report["journey"]
    head = f"why: customer {report['customer_id']}"
    if journey:
        head += f", journey {journey}"
    lines = [head]

    shown = [
        b
        for b in (
            _bound("events", report["events"]),
            _bound("entry decisions", report["decisions"]),
        )
        if b
    ]
    note = f" (older ones are not kept: showing {' and '.join(shown)})" if shown else ""
    lines.append(f"events and triggers{note}:")
    if not report["entries"]:
        if journey:
            lines.append(f"  none of the events or triggers kept could start {journey}")
        else:
            lines.append("  none yet")
    for entry in report["entries"]:
        event = entry["event"]
        if event is None:
            label = f"trigger: {entry['trigger']}"
        else:
            label = event.get("type", "")
            if event.get("id"):
                label += f" (id {event['id']})"
            if event.get("kept") is False:
                label += f" (event #{event['n']}, no longer kept)"
        lines.append(f"  {entry['at']}  {label}")
        if event is not None and event.get("duplicate"):
            lines.append("    dropped: an event with this id was taken before")
        elif not entry["journeys"]:
            lines.append("    starts no journey")
        for item in entry["journeys"]:
            lines.append(f"    {item['journey']}: {item['why']}")

    bound = _bound("journal lines", report["journal"])
    note = f" (older ones are not kept: from {bound})" if bound else ""
    lines.append(f"messages{note}:")
    if not report["messages"]:
        lines.append(f"  none from {journey}" if journey else "  none")
    for m in report["messages"]:
        what = f"{m['action']} {m.get('template', '')}".strip()
        lines.append(f"  {m['at']}  {m['journey']}  {what}: {m['why']}")
    return "\n".join(lines)


def run(args) -> ExitCode:
    return asyncio.run(_run(args))


async def _run(args) -> ExitCode:
    status = await fetch_status(args)
    if isinstance(status, ExitCode):
        return status
    report = explain(status, args.journey)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_why(report))
    return ExitCode.OK
