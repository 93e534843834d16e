"""Putting events into a running deployment, and reading a customer back.

In: an event (CONTRACT.md §2) as a dict or JSON text, a Temporal client.
Out: ``send_event`` (signal-with-start of the customer's entity workflow), ``get_status``
(the entity's ``status`` query) and ``parse_event`` / ``EventError`` (a bad event is
refused with a message saying what to fix, before anything reaches Temporal).
"""

from __future__ import annotations

import json
from typing import Any

from engine.config import TASK_QUEUE, customer_workflow_id

ALLOWED_KEYS = {"id", "type", "customer_id", "at", "customer", "data"}


class EventError(ValueError):
    """An event that does not follow CONTRACT.md §2."""


def parse_event(raw: str | dict, *, where: str = "event") -> dict:
    """Check an event and return it normalised (``customer`` and ``data`` default to {})."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            raise EventError(
                f"{where}:{err.lineno}:{err.colno}: error: not valid JSON: {err.msg}"
            ) from None
    if not isinstance(raw, dict):
        raise EventError(f"{where}: error: an event is a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - ALLOWED_KEYS
    if unknown:
        raise EventError(
            f"{where}: error: unknown key(s) {', '.join(sorted(unknown))}; "
            f"an event has {', '.join(sorted(ALLOWED_KEYS))}"
        )
    for name in ("type", "customer_id"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise EventError(f"{where}: error: '{name}' is required and must be a non-empty string")
    if "id" in raw and not isinstance(raw["id"], str | int):
        raise EventError(f"{where}: error: 'id' must be a string")
    for name in ("customer", "data"):
        if name in raw and not isinstance(raw[name], dict):
            raise EventError(f"{where}: error: '{name}' must be a JSON object")
    event: dict[str, Any] = {
        "type": raw["type"].strip(),
        "customer_id": raw["customer_id"].strip(),
        "customer": raw.get("customer") or {},
        "data": raw.get("data") or {},
    }
    if "id" in raw:
        event["id"] = str(raw["id"])
    if "at" in raw:
        event["at"] = raw["at"]
    return event


async def send_event(
    client, event: dict, task_queue: str = TASK_QUEUE, clock_offset: float = 0.0
) -> str:
    """Deliver one event to its customer's entity, starting it if needed; returns the id.

    ``clock_offset`` (seconds, simulations only) applies when this starts the entity."""
    from workflows.customer import CustomerWorkflow
    from workflows.state import CustomerInput

    workflow_id = customer_workflow_id(event["customer_id"])
    await client.start_workflow(
        CustomerWorkflow.run,
        CustomerInput(customer_id=event["customer_id"], clock_offset=clock_offset),
        id=workflow_id,
        task_queue=task_queue,
        start_signal="event",
        start_signal_args=[event],
    )
    return workflow_id


async def get_status(client, customer_id: str) -> dict:
    handle = client.get_workflow_handle(customer_workflow_id(customer_id))
    return await handle.query("status")
