"""`lifecycle show` and `lifecycle graph` know the contact policy's keys and `wait until`,
and `lifecycle status` shows a held send (the format, pinned)."""

from __future__ import annotations

from engine.cli.show import describe_journey
from engine.cli.status import format_status
from engine.tools.graph import build_graph, to_mermaid
from tests.workflows.harness import compile_plan, write_templates

RULES = """
journeys:
  timed:
    trigger: customer.signed_up
    class: transactional
    steps:
      - wait until 07:30
      - wait until customer.renewal_at
      - send a1
  capped:
    trigger: customer.signed_up
    when_capped: skip
    steps:
      - send a1
"""


def test_show_and_graph(tmp_path):
    plan = compile_plan(RULES, write_templates(tmp_path, ["a1"]))
    lines = describe_journey(plan.journeys["timed"])
    assert lines[1:4] == [
        "  trigger: customer.signed_up",
        "  reentry: never",
        "  class: transactional",
    ]
    assert lines[-3:] == [
        "    wait until 07:30    # line 7",
        "    wait until customer.renewal_at    # line 8",
        "    send a1    # line 9",
    ]
    assert "  when_capped: skip" in describe_journey(plan.journeys["capped"])
    text = to_mermaid(build_graph(plan.journeys["timed"]))
    assert '("wait until 07:30")' in text and '("wait until customer.renewal_at")' in text


def test_status_shows_a_held_send():
    status = {
        "customer_id": "c-1",
        "events_processed": 1,
        "profile": {},
        "active": [
            {
                "journey": "promo",
                "key": "",
                "started_at": "2030-01-01T22:00:00Z",
                "position": "0",
                "doing": "send at rules/a.yaml:9:9",
                "waiting": {
                    "pos": [0],
                    "kind": "defer",
                    "deadline": "2030-01-02T07:00:00Z",
                    "reason": "quiet_hours",
                    "detail": "quiet hours until 08:00 Europe/Berlin",
                    "origin": "rules/a.yaml:9:9",
                    "seconds_left": 32400,
                },
            }
        ],
        "journal": [
            {
                "at": "2030-01-01T22:00:00Z",
                "journey": "promo",
                "action": "defer",
                "template": "a1",
                "until": "2030-01-02T07:00:00Z",
                "reason": "quiet_hours",
                "detail": "quiet hours until 08:00 Europe/Berlin",
            },
            {
                "at": "2030-01-01T23:00:00Z",
                "journey": "other",
                "action": "send",
                "template": "a2",
                "status": "suppressed",
                "reason": "capped",
            },
        ],
    }
    assert format_status(status).splitlines()[2:] == [
        "active journeys: 1",
        "  promo: send waiting until 2030-01-02T07:00:00Z: quiet hours until 08:00 Europe/Berlin"
        " (rules/a.yaml:9:9); started 2030-01-01T22:00:00Z",
        "recent actions:",
        "  2030-01-01T22:00:00Z  promo                    defer   a1 until 2030-01-02T07:00:00Z:"
        " quiet hours until 08:00 Europe/Berlin",
        "  2030-01-01T23:00:00Z  other                    send    a2 [suppressed] capped",
    ]
