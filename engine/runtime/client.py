"""Putting events into a running deployment, and reading a customer back.

In: an event (CONTRACT.md §2) as a dict or JSON text, a Temporal client.
Out: ``connect`` (a client, or ``TemporalUnreachable`` saying how to start Temporal),
``send_event`` (signal-with-start of the customer's entity workflow), ``already_seen``
(whether the entity already has an event id), ``get_status`` (the entity's ``status``
query), and, re-exported from ``dsl.contract``, ``parse_event`` /
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
    "CLI_CONNECT_WAIT",
    "Event",
    "EventError",
    "TemporalUnreachable",
    "already_seen",
    "connect",
    "diagnose",
    "get_status",
    "workers_polling",
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


async def already_seen(client, event: Event | dict, timeout: float = 2.0) -> bool | None:
    """Whether the customer's entity already took an event with this ``id`` (processed
    it, or holds it in its inbox), so that sending it again would change nothing: True,
    False (no id, no such customer, or a new id) or None (no worker answered within
    ``timeout`` seconds, or the worker predates the ``seen`` query: unknown).

    A query, so it asks before sending and records nothing in the customer's history.
    The entity remembers the last ``workflows.state.SEEN_IDS_LIMIT`` ids; it drops a
    duplicate itself either way, this only lets the sender say so."""
    from temporalio.service import RPCError, RPCStatusCode

    event_id = event.get("id")
    if not event_id:
        return False
    handle = client.get_workflow_handle(customer_workflow_id(event["customer_id"]))
    try:
        return bool(await handle.query("seen", event_id, rpc_timeout=timedelta(seconds=timeout)))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        return None  # no worker polling (DEADLINE_EXCEEDED), or a closed workflow
    except Exception:  # WorkflowQueryFailedError: a worker without the query
        return None


async def get_status(client, customer_id: str, timeout: float | None = None) -> dict:
    """The entity's ``status`` query; ``timeout`` seconds bound the wait for a worker to
    answer (default: the SDK's), after which ``RPCError`` (``diagnose`` says why)."""
    handle = client.get_workflow_handle(customer_workflow_id(customer_id))
    rpc_timeout = timedelta(seconds=timeout) if timeout else None
    return await handle.query("status", rpc_timeout=rpc_timeout)


async def workers_polling(client, task_queue: str = TASK_QUEUE) -> int | None:
    """How many workers recently polled ``task_queue`` for workflow tasks (Temporal keeps
    a poller for a few minutes after its last poll); None when the server cannot say (the
    time-skipping test server does not implement the call)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.service import RPCError

    try:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError:
        return None
    return len(answer.pollers)


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
    if await workers_polling(client) == 0:
        return (
            f"customer {customer_id!r} did not answer: no worker is running (nothing polls the"
            f" task queue {TASK_QUEUE!r}); start one with `python worker.py` or `./run`"
            " (its events are kept until then)"
        )
    return f"customer {customer_id!r} did not answer (it may be between runs; try again)"


# How long a command-line tool waits for Temporal before saying it is not there: a server
# that is up answers in milliseconds; the worker waits longer (``connect``'s default),
# since it may have just started the embedded server.
CLI_CONNECT_WAIT = 2.0


class TemporalUnreachable(RuntimeError):
    """No Temporal server answered at ``address``; the message says how to start one."""

    def __init__(self, address: str, cause: str, configured: bool) -> None:
        self.address = address
        self.cause = cause
        if configured:
            hint = (
                "hint: TEMPORAL_ADDRESS points here; check that the server is up and the"
                " address (and TEMPORAL_TLS / TEMPORAL_API_KEY) are right"
            )
        else:
            hint = (
                "hint: start it with `./run` (a worker with an embedded Temporal, in the"
                " background) or `python worker.py`; a worker started with"
                " LIFECYCLE_TEMPORAL_PORT or TEMPORAL_ADDRESS needs the same setting here"
            )
        super().__init__(f"cannot reach Temporal at {address}: {cause}\n{hint}")


def _reason(err: BaseException) -> str:
    """The Rust core's connect error in a few words."""
    text = str(err)
    if "ConnectionRefused" in text or "Connection refused" in text:
        return "connection refused (nothing is listening there)"
    if isinstance(err, TimeoutError):
        return "no answer"
    return text.removeprefix("Failed client connect: ")


_SETTLE_SECONDS = 0.3
_settle_registered = False


def _settle_before_exit() -> None:
    """Give the SDK's Rust threads a moment, before the interpreter finalizes, to finish
    the callbacks they still owe Python: a thread that touches Python while it finalizes
    aborts the process (SIGABRT or SIGSEGV, "PyGILState_Release ... finalizing"; open
    as temporalio/sdk-python#300). Seen on ~1 in 4 short scripts here that connect, send
    one event and end; none in 60 with this pause. Runs from ``atexit``, which comes
    before finalization; ``lifecycle`` itself ends by ``os._exit`` instead."""
    import time

    time.sleep(_SETTLE_SECONDS)


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


async def connect(
    address: str | None = None,
    namespace: str | None = None,
    wait: float = 10.0,
    runtime=None,
) -> Client:
    """A client from ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE`` / TLS / API key settings
    (the embedded server's ``LIFECYCLE_TEMPORAL_PORT`` when ``TEMPORAL_ADDRESS`` is unset),
    retrying for ``wait`` seconds (a server still starting); then ``TemporalUnreachable``.
    Command-line tools pass ``CLI_CONNECT_WAIT``."""
    import time

    from engine.runtime.settings import Settings

    settings = Settings.from_env()
    target, kwargs = connect_options(settings)
    configured = bool(address or settings.temporal_address)
    address = address or target
    if namespace:
        kwargs["namespace"] = namespace
    if runtime is not None:  # a temporalio Runtime (the worker's, with Prometheus metrics)
        kwargs["runtime"] = runtime
    global _settle_registered
    if not _settle_registered:
        import atexit

        atexit.register(_settle_before_exit)
        _settle_registered = True
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            # Bounded even when something accepts the connection and never answers.
            return await asyncio.wait_for(Client.connect(address, **kwargs), max(left, 0.5))
        except (RuntimeError, TimeoutError) as err:  # refused, or a server still starting
            if time.monotonic() + 0.2 >= deadline:
                raise TemporalUnreachable(address, _reason(err), configured) from None
            await asyncio.sleep(0.2)
