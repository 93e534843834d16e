"""``lifecycle why``'s explanation of what the workflow cannot easily be driven to in a
scenario (tests/workflows/test_why.py has the rest, on real status output): a start
refused at the state bound, a journal that dropped older lines, a send still held whose
defer line fell out of it, a failed journey; and how values are cut to stay bounded.
The status lines are shaped as workflows.customer writes them."""

from __future__ import annotations

import json

from engine.cli.why import explain, format_why
from workflows.customer import _brief
from workflows.state import WHY_VALUE_BYTES


def status(**kw) -> dict:
    base = {
        "customer_id": "c-1",
        "profile": {},
        "active": [],
        "journal": [],
        "journal_total": 0,
        "now": "2030-01-05T00:00:00Z",
        "why": {"decisions": [], "decisions_total": 0, "events": [], "events_total": 0},
    }
    base.update(kw)
    return base


def test_a_start_refused_at_the_state_bound():
    st = status(
        why={
            "events": [{"n": 7, "at": "2030-01-01T00:00:00Z", "type": "order.placed", "id": "o"}],
            "events_total": 7,
            "decisions": [
                {
                    "n": 3,
                    "at": "2030-01-01T00:00:00Z",
                    "journey": "thanks",
                    "event": 7,
                    "trigger": "order.placed",
                    "outcome": "not_started",
                    "reason": "state_limit",
                }
            ],
            "decisions_total": 3,
        }
    )
    assert format_why(explain(st)) == (
        "why: customer c-1\n"
        "events and triggers (older ones are not kept: showing the last 1 of 7 events"
        " and the last 1 of 3 entry decisions):\n"
        "  2030-01-01T00:00:00Z  order.placed (id o)\n"
        "    thanks: not started: the customer's state is past 1048576 bytes (state_limit)\n"
        "messages:\n"
        "  none"
    )


def test_a_held_send_whose_defer_line_was_dropped_and_a_failed_journey():
    st = status(
        journal=[
            {
                "at": "2030-01-04T00:00:00Z",
                "journey": "report",
                "instance": "report:9",
                "action": "end",
                "reason": "failed",
                "error": "call create_ticket() did not finish",
            }
        ],
        journal_total=800,
        active=[
            {
                "id": "promo:4",
                "journey": "promo",
                "key": "",
                "waiting": {
                    "kind": "defer",
                    "deadline": "2030-01-06T08:00:00Z",
                    "reason": "quiet_hours",
                    "detail": "quiet hours until 08:00 UTC",
                    "origin": "rules/promo.yaml:9:9",
                },
            }
        ],
    )
    report = explain(st)
    assert format_why(report).split("\n")[-3:] == [
        "messages (older ones are not kept: from the last 1 of 800 journal lines):",
        "  2030-01-04T00:00:00Z  report  end: the journey failed:"
        " call create_ticket() did not finish",
        "  2030-01-05T00:00:00Z  promo  send: deferred until 2030-01-06T08:00:00Z"
        " (quiet_hours): quiet hours until 08:00 UTC; still held",
    ]
    assert [m["outcome"] for m in report["messages"]] == ["failed", "held"]
    assert report["journal"] == {"kept": 1, "total": 800}
    json.dumps(report)  # --json prints it as it is


def test_values_in_a_decision_are_cut_to_stay_bounded():
    assert _brief("gold") == "gold"
    assert _brief("x" * 500) == "x" * WHY_VALUE_BYTES + "…"
    assert _brief(list(range(1000))) == {
        "omitted": f"{len(json.dumps(list(range(1000))).replace(' ', ''))} bytes"
    }
    st = status(
        why={
            "events": [{"n": 1, "at": "2030-01-01T00:00:00Z", "type": "x.y", "id": ""}],
            "events_total": 1,
            "decisions": [
                {
                    "n": 1,
                    "at": "2030-01-01T00:00:00Z",
                    "journey": "j",
                    "event": 1,
                    "trigger": "x.y",
                    "outcome": "not_started",
                    "reason": "when",
                    "when": "len(customer.tags) > 3",
                    "values": {"len(customer.tags)": 2, "customer.tags": {"omitted": "2000 bytes"}},
                }
            ],
            "decisions_total": 1,
        }
    )
    assert format_why(explain(st, "j")).split("\n")[3] == (
        "    j: not started: when len(customer.tags) > 3 was false:"
        " len(customer.tags) = 2, customer.tags = (2000 bytes, not kept)"
    )
