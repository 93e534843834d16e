"""Putting events into a running deployment, and reading a customer back.

In: an event (CONTRACT.md §2) as a dict or JSON text, a Temporal client.
Out: ``send_event`` (signal-with-start of the customer's entity workflow), ``get_status``
(the entity's ``status`` query), and, re-exported from ``dsl.contract``, ``parse_event`` /
``EventError`` (a bad event is refused with a message saying what to fix, before anything
reaches Temporal).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

# The event and its check are part of the workflow contract (dsl.contract); re-exported
# here for the callers that always imported them from the client.
from dsl.contract import Event, EventError, parse_event
from engine.runtime.config import TASK_QUEUE, customer_workflow_id

__all__ = [
    "Event",
    "EventError",
    "connect",
    "diagnose",
    "get_status",
    "parse_event",
    "send_event",
]


async def send_event(
    client,
    event: Event | dict,
    task_queue: str = TASK_QUEUE,
    clock_offset: float = 0.0,
    history_limit: int | None = None,
    allow_offset: bool = False,
    send_heartbeat_seconds: float | None = None,
    rpc_timeout: float | None = None,
) -> str:
    """Deliver one event to its customer's entity, starting it if needed; returns the id.

    The event is checked first (``parse_event``: ``EventError`` and nothing sent if bad).
    ``clock_offset`` (seconds, simulations only) applies when this starts the entity;
    ``allow_offset`` (simulations only) lets ``at`` be an offset such as ``+2d``;
    ``send_heartbeat_seconds`` (tests) the send activity's heartbeat timeout when this starts
    the entity (default 15 s: how soon a send on a worker that died is retried);
    ``rpc_timeout`` (seconds) bounds the wait for Temporal (the API answers 503 after it)."""
    from workflows.customer import CustomerWorkflow
    from workflows.state import CustomerInput

    event = parse_event(event, allow_offset=allow_offset)
    workflow_id = customer_workflow_id(event["customer_id"])
    await client.start_workflow(
        CustomerWorkflow.run,
        CustomerInput(
            customer_id=event["customer_id"],
            clock_offset=clock_offset,
            **({"history_limit": history_limit} if history_limit else {}),
            **(
                {"send_heartbeat_seconds": send_heartbeat_seconds} if send_heartbeat_seconds else {}
            ),
        ),
        id=workflow_id,
        task_queue=task_queue,
        start_signal="event",
        start_signal_args=[event],
        **({"rpc_timeout": timedelta(seconds=rpc_timeout)} if rpc_timeout else {}),
    )
    return workflow_id


async def get_status(client, customer_id: str) -> dict:
    handle = client.get_workflow_handle(customer_workflow_id(customer_id))
    return await handle.query("status")


async def diagnose(client, customer_id: str) -> str:
    """Why a customer cannot answer ``status``: unknown, or known but failing (its workflow
    task fails on every attempt, with the error), or between runs; one readable line."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(customer_workflow_id(customer_id))
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return f"no customer {customer_id!r}"
        raise
    raw = desc.raw_description
    if desc.status is not None and desc.status.name != "RUNNING":
        return f"customer {customer_id!r}: its workflow is {desc.status.name.lower()}"
    attempt = raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0
    cause = ""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            cause = failure.message or str(event.workflow_task_failed_event_attributes.cause)
    if attempt > 1 or cause:
        return (
            f"customer {customer_id!r} is FAILING: its workflow task failed"
            f"{f' {attempt - 1} times' if attempt > 1 else ''}: {cause or 'unknown error'}"
            " (events for it are kept and processed once the cause is fixed)"
        )
    return f"customer {customer_id!r} did not answer (it may be between runs; try again)"


def connect_options(settings=None) -> tuple[str, dict]:
    """(address, keyword arguments of ``Client.connect``) from the settings: namespace, TLS,
    API key."""
    from engine.runtime.settings import Settings

    settings = settings if settings is not None else Settings.from_env()
    kwargs: dict = {"namespace": settings.temporal_namespace}
    api_key = settings.temporal_api_key
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if cert and key:
        from temporalio.service import TLSConfig

        kwargs["tls"] = TLSConfig(
            client_cert=Path(cert).read_bytes(), client_private_key=Path(key).read_bytes()
        )
    elif api_key or settings.temporal_tls:
        kwargs["tls"] = True
    if api_key:
        kwargs["api_key"] = api_key
    return settings.temporal_target, kwargs


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """A client from ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE`` / TLS / API key settings."""
    target, kwargs = connect_options()
    address = address or target
    if namespace:
        kwargs["namespace"] = namespace
    last: Exception | None = None
    for _ in range(50):
        try:
            return await Client.connect(address, **kwargs)
        except RuntimeError as err:  # server still starting
            last = err
            await asyncio.sleep(0.2)
    raise RuntimeError(f"cannot reach Temporal at {address}: {last}")
