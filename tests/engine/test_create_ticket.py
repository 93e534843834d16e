"""The create_ticket example activity, alone and as the registry hands it to Temporal."""

from __future__ import annotations

import sqlite3

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.create_ticket import CreateTicketInput, create_ticket
from dsl.contract import CallInput
from engine.runtime.registry import Param, load_registry, temporal_activities


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_DATA", str(tmp_path))
    return tmp_path


async def test_creates_an_open_ticket(data_dir):
    inp = CreateTicketInput(
        priority="urgent", complaint="k-9", customer_id="c-42", idempotency_key="wf/3"
    )
    result = await ActivityEnvironment().run(create_ticket, inp)
    assert result == {"id": "T-000001", "priority": "urgent", "status": "open"}
    with sqlite3.connect(data_dir / "tickets.sqlite") as conn:
        rows = conn.execute(
            "SELECT customer_id, priority, complaint, status FROM tickets"
        ).fetchall()
    assert rows == [("c-42", "urgent", "k-9", "open")]


async def test_a_retry_returns_the_same_ticket(data_dir):
    env = ActivityEnvironment()
    first = await env.run(create_ticket, CreateTicketInput("high", idempotency_key="wf/3"))
    again = await env.run(create_ticket, CreateTicketInput("high", idempotency_key="wf/3"))
    other = await env.run(create_ticket, CreateTicketInput("low", idempotency_key="wf/4"))
    assert first == again == {"id": "T-000001", "priority": "high", "status": "open"}
    assert other["id"] == "T-000002"
    with sqlite3.connect(data_dir / "tickets.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (2,)


async def test_bad_priority_is_non_retryable_invalid_input(data_dir):
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(create_ticket, CreateTicketInput("asap"))
    assert (err.value.type, err.value.non_retryable) == ("InvalidInput", True)
    assert err.value.message == "priority must be one of low, normal, high, urgent, not 'asap'"
    assert not (data_dir / "tickets.sqlite").exists()


def test_registry_describes_the_rule_facing_parameters():
    spec = load_registry()["create_ticket"]
    assert spec.params == {
        "priority": Param("str", True),
        "complaint": Param("str", False),
        "summary": Param("str", False),
    }
    assert spec.timeout_seconds == 30
    assert spec.temporal_name == "call.create_ticket"


async def test_through_the_registry_wrapper_with_runtime_context(data_dir):
    (run,) = [fn for fn in temporal_activities(load_registry()) if fn.__name__ == "create_ticket"]
    payload = CallInput(
        args={"priority": "normal", "summary": "late parcel"},
        context={
            "customer_id": "c-7",
            "journey": "complaint-escalation",
            "idempotency_key": "wf/9",
        },
    )
    env = ActivityEnvironment()
    result = await env.run(run, payload)
    assert result == {"id": "T-000001", "priority": "normal", "status": "open"}
    assert await env.run(run, payload) == result
    with sqlite3.connect(data_dir / "tickets.sqlite") as conn:
        row = conn.execute("SELECT customer_id, summary, idempotency_key FROM tickets").fetchone()
    assert row == ("c-7", "late parcel", "wf/9")
