"""The contact-policy sample (samples/contact-policy): what `lifecycle simulate --json`
reports, pinned in full: each deferral at its real time, each suppression with its reason,
the transactional receipt at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.tools.simulator import format_json_lines, read_events, simulate

SAMPLE = Path(__file__).parents[2] / "samples" / "contact-policy"
START = datetime(2030, 1, 1, tzinfo=UTC)


def brief(line: dict) -> tuple:
    at = line["at"][5:16].replace("T", " ")
    if line["action"] == "defer":
        return (at, line["customer_id"], line["journey"], "defer", line["template"], line["detail"])
    if line["action"] == "end":
        return (at, line["customer_id"], line["journey"], "end", line["reason"])
    status = line.get("status", "sent") + (f": {line['reason']}" if line.get("reason") else "")
    return (at, line["customer_id"], line["journey"], line["action"], line["template"], status)


async def test_the_contact_policy_sample_timeline():
    events = read_events(SAMPLE / "events.jsonl", START)
    result = await simulate(
        events, SAMPLE / "rules", SAMPLE / "templates", START, timedelta(days=4)
    )
    lines = [json.loads(x) for x in format_json_lines(result).splitlines()]
    timeline = sorted(
        (brief(x) for x in lines if x["action"] != "end"), key=lambda b: (b[1], b[0], b[2])
    )
    assert timeline == [
        (
            "01-01 22:00",
            "ann",
            "newsletter",
            "defer",
            "hello",
            "quiet hours until 08:00 Europe/Berlin",
        ),
        ("01-01 22:30", "ann", "receipt", "send", "receipt", "sent"),
        ("01-02 07:00", "ann", "newsletter", "send", "hello", "sent"),
        ("01-02 09:00", "ann", "newsletter", "send", "tips", "sent"),
        ("01-02 10:00", "ann", "flash-sale", "send", "offer", "suppressed: capped"),
        (
            "01-02 10:00",
            "ann",
            "newsletter",
            "defer",
            "offer",
            "frequency cap: 2 sent since 2030-01-01T10:00:00Z",
        ),
        ("01-03 07:00", "ann", "newsletter", "send", "offer", "sent"),
        ("01-01 22:00", "bob", "newsletter", "send", "hello", "sent"),
        ("01-02 00:00", "bob", "newsletter", "send", "tips", "suppressed: unsubscribed"),
        ("01-02 01:00", "bob", "newsletter", "send", "offer", "suppressed: unsubscribed"),
        ("01-02 10:00", "bob", "flash-sale", "send", "offer", "suppressed: unsubscribed"),
        ("01-01 10:00", "cat", "newsletter", "send", "hello", "suppressed: no_consent"),
        ("01-01 12:00", "cat", "newsletter", "send", "tips", "suppressed: no_consent"),
        ("01-01 13:00", "cat", "newsletter", "send", "offer", "suppressed: no_consent"),
        ("01-01 22:00", "cat", "flash-sale", "send", "offer", "suppressed: no_consent"),
    ]
    # The --json lines of a suppressed send carry status and reason (CONTRACT.md §6).
    suppressed = next(x for x in lines if x.get("status") == "suppressed")
    assert set(suppressed) == {
        "at",
        "customer_id",
        "journey",
        "action",
        "template",
        "to",
        "subject",
        "status",
        "reason",
    }
    assert len(result.emails) == 5
