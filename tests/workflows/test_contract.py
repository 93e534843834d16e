"""dsl/contract.py: the workflow <-> worker payloads keep the JSON shape that running
customers and recorded histories have (the dicts the workflow used to build), and every
shape the lookup ever answered still decodes; triggers have a kind, and plans pinned
before that still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from temporalio.converter import DataConverter

from dsl.contract import (
    CallInput,
    CustomerSettings,
    LookupInput,
    LookupItem,
    LookupResult,
    SendEmailInput,
    SendEmailResult,
    lookup_result_of,
)
from dsl.ir import Trigger, journey_from_dict, to_dict

ROOT = Path(__file__).parents[2]
HISTORIES = Path(__file__).parent / "histories"
CONVERTER = DataConverter.default.payload_converter


def wire(value) -> dict:
    """``value`` as the JSON Temporal puts in the payload."""
    return json.loads(CONVERTER.to_payloads([value])[0].data)


def test_send_email_input_has_the_fields_of_the_dict_it_replaces():
    payload = SendEmailInput(
        idempotency_key="c/e/j:1/0",
        kind="send",
        template="welcome",
        to="ann@example.test",
        sender="Acme <hello@acme.test>",
        customer_id="c",
        journey="j",
        context={"customer": {}},
        unsubscribe_url="https://x.test/u/c",
        sent_at="2030-01-01T00:00:00Z",
    )
    # The keys the workflow's dict had before dsl.contract (workflows/customer.py _send),
    # plus the ones added since, each with a default (an old input still decodes).
    assert set(wire(payload)) - {"public_url", "message_class"} == {
        "idempotency_key",
        "kind",
        "template",
        "to",
        "sender",
        "customer_id",
        "journey",
        "context",
        "unsubscribe_url",
        "sent_at",
    }
    old = {k: v for k, v in wire(payload).items() if k not in ("public_url", "message_class")}
    decoded = CONVERTER.from_payloads(CONVERTER.to_payloads([old]), [SendEmailInput])[0]
    assert (decoded.public_url, decoded.message_class) == ("", "marketing")


def test_call_input_and_results_keep_their_json_shape():
    assert wire(CallInput(args={"a": 1}, context={"customer_id": "c"})) == {
        "args": {"a": 1},
        "context": {"customer_id": "c"},
    }
    assert wire(SendEmailResult("sent", "<m@x>", "Hi", "a@b.test")) == {
        "status": "sent",
        "message_id": "<m@x>",
        "subject": "Hi",
        "to": "a@b.test",
        "detail": "",
    }
    assert set(wire(LookupInput(event_type="go", known=["h"]))) >= {"event_type", "known"}


def test_every_lookup_answer_shape_decodes():
    item = {"hash": "h1", "journey": {"name": "j"}}
    # Before the trigger cache: a bare list.
    assert lookup_result_of([item, {"hash": "h2"}]) == LookupResult(
        journeys=[LookupItem("h1", {"name": "j"}), LookupItem("h2")]
    )
    # trigger-cache-v1: journeys and triggers, no settings.
    old = {"journeys": [item], "triggers": ["go"]}
    assert lookup_result_of(old) == LookupResult([LookupItem("h1", {"name": "j"})], ["go"])
    assert CONVERTER.from_payloads(CONVERTER.to_payloads([old]), [LookupResult]) == [
        LookupResult([LookupItem("h1", {"name": "j"})], ["go"], None)
    ]
    # Now: with the customer-wide settings.
    new = LookupResult([LookupItem("h1")], ["go"], CustomerSettings("A <a@b.test>", "u"))
    decoded = CONVERTER.from_payloads(CONVERTER.to_payloads([new]), [LookupResult])[0]
    assert decoded == new == lookup_result_of(wire(new))


def test_a_trigger_has_a_kind_and_an_event_triggers_key_is_its_event_type():
    trigger = Trigger(kind="event", event="order.placed")
    assert trigger.key == "order.placed" == str(trigger)
    assert to_dict(trigger) == {"kind": "event", "event": "order.placed"}


def _pinned_journeys_in(path: Path) -> list[dict]:
    """The journeys the lookup handed out in a recorded history (pinned plans)."""
    import base64

    out = []
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if not marker or "result" not in marker.get("details", {}):
            continue
        for payload in marker["details"]["result"]["payloads"]:
            answer = json.loads(base64.b64decode(payload["data"]))
            out += [i.journey for i in lookup_result_of(answer).journeys if i.journey]
    return out


def test_plans_pinned_before_triggers_had_kinds_still_load():
    (path,) = sorted(HISTORIES.glob("*-v0-customer-c-ann.json"))
    pinned = _pinned_journeys_in(path)
    assert pinned and all(isinstance(d["trigger"], str) for d in pinned)
    for data in pinned:
        journey = journey_from_dict(data)
        assert journey.trigger == Trigger(kind="event", event=data["trigger"])
        assert journey.sender  # these carried the sender; the interpreter keeps using it


def test_the_content_language_and_the_workflows_import_nothing_from_the_engine():
    offenders = []
    for folder in ("dsl", "workflows"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "engine"
                ]
    contract_and_workflows = [o for o in offenders if not o.startswith("dsl/compiler.py")]
    # dsl/compiler.py is being cut loose in parallel (issue 8 item 3).
    assert contract_and_workflows == []
