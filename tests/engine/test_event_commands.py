"""send-event refuses bad events before anything reaches Temporal; status formats a
customer's state readably."""

from __future__ import annotations

import pytest

from engine.cli import ExitCode, main
from engine.cli.status import format_status
from engine.runtime.client import EventError, parse_event


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "{not json",
            "event:1:2: error: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("[1]", "event: error: an event is a JSON object, got list"),
        ('{"type": "x"}', "event: error: 'customer_id' is required and must be a non-empty string"),
        (
            '{"customer_id": "c", "type": ""}',
            "event: error: 'type' is required and must be a non-empty string",
        ),
        (
            '{"type": "x", "customer_id": "c", "data": 3}',
            "event: error: 'data' must be a JSON object",
        ),
        (
            '{"type": "x", "customer_id": "c", "payload": {}}',
            "event: error: unknown key(s) payload; an event has at, customer, customer_id, data, id, type",
        ),
    ],
)
def test_bad_events_are_refused_with_what_to_fix(raw, message):
    with pytest.raises(EventError) as err:
        parse_event(raw)
    assert str(err.value) == message


def test_a_good_event_is_normalised():
    assert parse_event('{"id": "7", "type": " order.placed ", "customer_id": "c-1"}') == {
        "id": "7",
        "type": "order.placed",
        "customer_id": "c-1",
        "customer": {},
        "data": {},
    }


def test_send_event_sends_nothing_when_any_line_is_bad(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "a", "customer_id": "c"}\n{"type": "b"}\n')
    # No Temporal server is running on this address: had it tried to send, it would fail
    # with FAILURE (3), not PROBLEMS (1).
    code = main(["send-event", str(events), "--address", "127.0.0.1:1"])
    assert code == ExitCode.PROBLEMS
    err = capsys.readouterr().err
    assert f"{events}:2: error: 'customer_id' is required" in err
    assert "1 bad event(s); nothing was sent" in err


def test_status_shows_where_each_journey_waits():
    status = {
        "customer_id": "c-1",
        "events_processed": 2,
        "profile": {"name": "Ann", "orders_count": 1},
        "active": [
            {
                "id": "welcome:1",
                "journey": "welcome",
                "key": "",
                "started_at": "2030-01-01T00:00:00Z",
                "position": "1",
                "doing": "",
                "waiting": {
                    "kind": "timer",
                    "deadline": "2030-01-03T00:00:00Z",
                    "origin": "rules/a.yaml:9:9",
                },
            },
            {
                "id": "complaint:k1:2",
                "journey": "complaint",
                "key": "k1",
                "started_at": "2030-01-01T00:00:00Z",
                "position": "2",
                "doing": "",
                "waiting": {
                    "kind": "event",
                    "event": "complaint.resolved",
                    "deadline": "2030-01-02T00:00:00Z",
                    "origin": "rules/b.yaml:12:9",
                },
            },
        ],
        "journal": [
            {
                "at": "2030-01-01T00:00:00Z",
                "journey": "welcome",
                "action": "send",
                "template": "welcome",
                "subject": "Hi Ann",
            },
        ],
    }
    assert format_status(status).splitlines() == [
        "customer c-1 (events processed: 2)",
        "profile:",
        '  name: "Ann"',
        "  orders_count: 1",
        "active journeys: 2",
        "  welcome: waiting until 2030-01-03T00:00:00Z (rules/a.yaml:9:9); started 2030-01-01T00:00:00Z",
        "  complaint [k1]: waiting for complaint.resolved until 2030-01-02T00:00:00Z "
        "(rules/b.yaml:12:9); started 2030-01-01T00:00:00Z",
        "recent actions:",
        "  2030-01-01T00:00:00Z  welcome                  send    welcome Hi Ann",
    ]
