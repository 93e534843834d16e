"""CONTRACT.md §2 intake limits, enforced by ``engine.runtime.client.parse_event`` for every way
in: send-event (a file is checked whole, one bad line sends none), the simulator's
``read_events`` (which also takes offsets for ``at``) and the Python client's
``send_event``."""

from __future__ import annotations

import asyncio
import json
import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError

from dsl.contract import MAX_CUSTOMER_ID_CHARS, MAX_EVENT_BYTES, MAX_EVENT_DEPTH
from engine.cli import ExitCode, main
from engine.runtime.client import EventError, parse_event, send_event
from engine.runtime.config import customer_workflow_id
from engine.tools.simulator import SimulationError, read_events, start_environment

GOOD = {"type": "order.placed", "customer_id": "c-1"}


def line(**fields) -> str:
    return json.dumps({**GOOD, **fields})


def nested(depth: int) -> str:
    """An event whose ``data`` makes the whole object ``depth`` levels deep."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return '{"type": "x", "customer_id": "c", "data": {"a": ' + inner + "}}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            line(customer_id="c" * 10_240),
            "event: error: 'customer_id' is 10,240 characters long; at most 256 are allowed",
        ),
        (
            line(customer_id="c-1\nc-2"),
            "event: error: 'customer_id' contains the non-printable character U+000A at "
            "position 4; use printable characters only (no line breaks, tabs or control "
            "characters)",
        ),
        (
            line(customer_id="c\x001"),
            "event: error: 'customer_id' contains the non-printable character U+0000 at "
            "position 2; use printable characters only (no line breaks, tabs or control "
            "characters)",
        ),
        (
            nested(10_000),
            "event: error: the event is nested more than 32 levels deep; flatten "
            "'customer' / 'data' to at most 32 levels",
        ),
        (
            line(at="yesterday"),
            "event: error: 'at' is not a time: 'yesterday'; write it as ISO 8601 "
            "(2026-03-01T10:00:00Z)",
        ),
        (
            line(at="+2d"),
            "event: error: 'at' is not a time: '+2d'; write it as ISO 8601 (2026-03-01T10:00:00Z)",
        ),
        (
            line(at=1700000000),
            "event: error: 'at' must be a string in ISO 8601 (2026-03-01T10:00:00Z), "
            "got the number 1700000000",
        ),
        (line(id=True), "event: error: 'id' must be a non-empty string, got true"),
        (
            line(id=7),
            "event: error: 'id' must be a non-empty string, got the number 7; "
            'write it as "id": "7"',
        ),
        (
            '{"type": "x", "customer_id": "c", "data": {"v": NaN}}',
            "event: error: NaN is not a JSON number (numbers must be finite); send null or "
            "a string instead",
        ),
        (
            '{"type": "x", "customer_id": "c", "data": {"v": -Infinity}}',
            "event: error: -Infinity is not a JSON number (numbers must be finite); send "
            "null or a string instead",
        ),
        (
            '{"type": "x", "customer_id": "c", "data": {"v": 1e999}}',
            "event: error: the number 1e999 is out of range (numbers must be finite, at most "
            "about 1.8e308); send it as a string",
        ),
        (
            line(data={"blob": "x" * 40_000}),
            "event: error: the event is 40,068 bytes of JSON; at most 32,768 (32 KB) are "
            "allowed: keep large data out of events (send an id or a link instead)",
        ),
    ],
    ids=[
        "10KB-customer-id",
        "newline-in-customer-id",
        "nul-in-customer-id",
        "10000-deep",
        "malformed-at",
        "offset-at-outside-a-simulation",
        "number-at",
        "id-true",
        "id-number",
        "NaN",
        "-Infinity",
        "1e999",
        "40KB-event",
    ],
)
def test_events_over_the_limits_are_refused_with_what_to_fix(raw, message):
    with pytest.raises(EventError) as err:
        parse_event(raw)
    assert str(err.value) == message


def test_the_limits_themselves_are_accepted():
    exact = line(customer_id="c" * MAX_CUSTOMER_ID_CHARS, at="2026-03-01T10:00:00Z")
    assert parse_event(exact)["customer_id"] == "c" * MAX_CUSTOMER_ID_CHARS
    assert parse_event(nested(MAX_EVENT_DEPTH))["type"] == "x"
    with pytest.raises(EventError, match="nested more than 32"):
        parse_event(nested(MAX_EVENT_DEPTH + 1))
    padding = MAX_EVENT_BYTES - len(line(data={"s": ""}))
    assert parse_event(line(data={"s": "x" * padding}))["data"]["s"] == "x" * padding
    with pytest.raises(EventError, match="32,769 bytes"):
        parse_event(line(data={"s": "x" * (padding + 1)}))
    # Brackets inside strings (escaped quotes included) do not count as nesting.
    assert parse_event(line(data={"s": '\\"' + "[" * 100}))["data"]["s"] == '\\"' + "[" * 100


def test_the_python_client_checks_dicts_the_same_way():
    deep: dict = {}
    node = deep
    for _ in range(10_000):  # far deeper than json.dumps could recurse
        node["a"] = {}
        node = node["a"]
    with pytest.raises(EventError, match="nested more than 32 levels"):
        parse_event({**GOOD, "data": deep})
    with pytest.raises(EventError, match="numbers must be finite"):
        parse_event({**GOOD, "data": {"v": math.inf}})
    with pytest.raises(EventError, match="'customer_id' contains the non-printable"):
        parse_event({**GOOD, "customer_id": "c\r\n"})


def test_a_simulation_accepts_offsets_and_names_the_bad_line(tmp_path):
    from datetime import UTC, datetime

    events = tmp_path / "events.jsonl"
    events.write_text(line(at="+1d6h") + "\n" + line(at="2026-13-01") + "\n")
    with pytest.raises(SimulationError) as err:
        read_events(events, datetime(2030, 1, 1, tzinfo=UTC))
    assert str(err.value) == (
        f"{events}:2: error: 'at' is not a time: '2026-13-01'; write it as ISO 8601 "
        "(2026-03-01T10:00:00Z) or an offset from the start (+0s, +2d, +1d6h)"
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(data=json_values, customer_id=st.text(min_size=1, max_size=300))
def test_every_event_parse_event_accepts_is_within_the_limits(data, customer_id):
    """Whatever comes in, parse_event either refuses it with EventError or returns an
    event within every §2 limit; it never raises anything else."""
    raw = json.dumps({"type": "t", "customer_id": customer_id, "data": {"v": data}})
    try:
        event = parse_event(raw)
    except EventError:
        return
    text = json.dumps(event, allow_nan=False)  # finite numbers only
    assert len(raw.encode()) <= MAX_EVENT_BYTES
    assert 1 <= len(event["customer_id"]) <= MAX_CUSTOMER_ID_CHARS
    assert event["customer_id"].isprintable()
    assert json.loads(text) == event


# ----------------------------------------------------------------- send-event, for real


@pytest.fixture(scope="module")
async def temporal():
    env = await start_environment()
    yield env
    await env.shutdown()


async def started(env, customer_id: str) -> bool:
    try:
        await env.client.get_workflow_handle(customer_workflow_id(customer_id)).describe()
    except RPCError:
        return False
    return True


@pytest.mark.parametrize(
    "bad",
    [
        line(customer_id="c" * 10_240),
        nested(10_000),
        line(at="not a time"),
        line(id=True),
        '{"type": "x", "customer_id": "c", "data": {"v": NaN}}',
        '{"type": "x", "customer_id": "c", "data": {"v": 1e999}}',
        line(customer_id="evil\nc-1\x00"),
    ],
    ids=["10KB-customer-id", "10000-deep", "bad-at", "id-true", "NaN", "1e999", "newline-NUL"],
)
async def test_send_event_starts_no_workflow_when_one_line_is_bad(temporal, tmp_path, capsys, bad):
    address = temporal.client.service_client.config.target_host
    first, second = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    events = tmp_path / "events.jsonl"
    events.write_text(line(customer_id=first) + "\n" + line(customer_id=second) + "\n" + bad)
    code = await asyncio.to_thread(main, ["send-event", str(events), "--address", address])
    err = capsys.readouterr().err
    assert f"{events}:3: error: " in err
    assert "Traceback" not in err
    assert err.endswith("1 bad event(s); nothing was sent\n")
    assert code == ExitCode.PROBLEMS
    assert not await started(temporal, first)
    assert not await started(temporal, second)

    # The same file without the bad line goes out: the check above can fail.
    events.write_text(line(customer_id=first) + "\n" + line(customer_id=second) + "\n")
    code = await asyncio.to_thread(main, ["send-event", str(events), "--address", address])
    assert code == ExitCode.OK
    assert await started(temporal, first) and await started(temporal, second)


async def test_the_python_client_refuses_before_sending(temporal):
    customer_id = "c\n" + uuid.uuid4().hex[:6]
    with pytest.raises(EventError, match="non-printable character U\\+000A"):
        await send_event(temporal.client, {**GOOD, "customer_id": customer_id})
    assert not await started(temporal, customer_id)


async def test_a_256_character_id_of_4_byte_characters_still_reaches_its_customer(temporal):
    # 256 emoji are 1,024 bytes: "customer-" + them passed Temporal's 1,000-byte id limit
    # (before: `WorkflowId exceeds maximum allowed length (1033/1000)` on the dev server).
    customer_id = "\N{GRINNING FACE}" * 255 + uuid.uuid4().hex[:1]
    workflow_id = customer_workflow_id(customer_id)
    assert workflow_id.startswith("customer:sha256:") and len(workflow_id.encode()) <= 1000
    assert customer_workflow_id("c-1") == "customer-c-1"  # ordinary ids keep their form
    await send_event(temporal.client, {**GOOD, "customer_id": customer_id})
    assert await started(temporal, customer_id)
