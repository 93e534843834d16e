"""Putting events into a running deployment, and reading a customer back.

In: an event (CONTRACT.md §2) as a dict or JSON text, a Temporal client.
Out: ``send_event`` (signal-with-start of the customer's entity workflow), ``get_status``
(the entity's ``status`` query) and ``parse_event`` / ``EventError`` (a bad event is
refused with a message saying what to fix, before anything reaches Temporal).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from engine.runtime.config import (
    MAX_CUSTOMER_ID_CHARS,
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    MAX_NAME_CHARS,
    TASK_QUEUE,
    customer_workflow_id,
)

ALLOWED_KEYS = {"id", "type", "customer_id", "at", "customer", "data"}
# A simulation's `at` may be an offset from its start: +0s, +2d, +1d6h (engine.tools.simulator).
OFFSET_RE = re.compile(r"^\+((?:\d+[wdhms])+)$")
# The characters that matter for nesting: brackets, and quotes and backslashes (so a
# bracket inside a string does not count).
_NESTING_CHARS = re.compile(r'[\[\]{}"\\]')


class EventError(ValueError):
    """An event that does not follow CONTRACT.md §2."""


def parse_event(raw: str | dict, *, where: str = "event", allow_offset: bool = False) -> dict:
    """Check an event against CONTRACT.md §2 and return it normalised (``customer`` and
    ``data`` default to {}). ``allow_offset``: ``at`` may be an offset (simulations).

    Limits are checked before the JSON is decoded, so a 10,000-deep or 10 MB input is
    refused in linear time and never reaches the recursive decoder."""
    if isinstance(raw, str):
        raw = _decode(raw, where)
    elif isinstance(raw, dict):
        _check_tree(raw, where)
    if not isinstance(raw, dict):
        raise EventError(f"{where}: error: an event is a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - ALLOWED_KEYS
    if unknown:
        raise EventError(
            f"{where}: error: unknown key(s) {', '.join(sorted(unknown))}; "
            f"an event has {', '.join(sorted(ALLOWED_KEYS))}"
        )
    for name, limit in (("type", MAX_NAME_CHARS), ("customer_id", MAX_CUSTOMER_ID_CHARS)):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise EventError(f"{where}: error: '{name}' is required and must be a non-empty string")
        _check_text(value, name, limit, where)
    if "id" in raw:
        if not isinstance(raw["id"], str) or not raw["id"]:
            raise EventError(
                f"{where}: error: 'id' must be a non-empty string, got {_json_kind(raw['id'])}"
                + (f'; write it as "id": "{raw["id"]}"' if _is_number(raw["id"]) else "")
            )
        _check_text(raw["id"], "id", MAX_NAME_CHARS, where)
    if "at" in raw:
        _check_at(raw["at"], where, allow_offset)
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
        event["id"] = raw["id"]
    if "at" in raw:
        event["at"] = raw["at"].strip()
    return event


def _decode(text: str, where: str) -> Any:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise EventError(_too_big(size, where))
    if _max_depth(text) > MAX_EVENT_DEPTH:
        raise EventError(_too_deep(where))
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise EventError(
            f"{where}:{err.lineno}:{err.colno}: error: not valid JSON: {err.msg}"
        ) from None
    except _NotFinite as err:
        raise EventError(f"{where}: error: {err}") from None
    except ValueError as err:  # an integer of more than 4,300 digits
        raise EventError(f"{where}: error: not a usable JSON number: {err}") from None


def _max_depth(text: str) -> int:
    """How deeply brackets nest in ``text`` (JSON or not), in one linear pass."""
    depth = deepest = 0
    in_string, escaped = False, -1  # escaped: the index of the character after a backslash
    for match in _NESTING_CHARS.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped:
                continue
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(
        f"{name} is not a JSON number (numbers must be finite); send null or a string instead"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(
            f"the number {text} is out of range (numbers must be finite, at most about "
            "1.8e308); send it as a string"
        )
    return value


def _check_tree(value: dict, where: str) -> None:
    """The same limits for an event given as a dict (the Python client), without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EVENT_DEPTH:
            raise EventError(_too_deep(where))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list | tuple))
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        raise EventError(
            f"{where}: error: numbers must be finite (NaN and infinity are not JSON); "
            "send null or a string instead"
        ) from None
    except TypeError as err:
        raise EventError(f"{where}: error: not JSON data: {err}") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise EventError(_too_big(size, where))


def _too_big(size: int, where: str) -> str:
    return (
        f"{where}: error: the event is {size:,} bytes of JSON; at most {MAX_EVENT_BYTES:,} "
        "(32 KB) are allowed: keep large data out of events (send an id or a link instead)"
    )


def _too_deep(where: str) -> str:
    return (
        f"{where}: error: the event is nested more than {MAX_EVENT_DEPTH} levels deep; "
        f"flatten 'customer' / 'data' to at most {MAX_EVENT_DEPTH} levels"
    )


def _check_text(value: str, name: str, limit: int, where: str) -> None:
    if len(value) > limit:
        raise EventError(
            f"{where}: error: '{name}' is {len(value):,} characters long; "
            f"at most {limit} are allowed"
        )
    for i, ch in enumerate(value):
        if not ch.isprintable():
            raise EventError(
                f"{where}: error: '{name}' contains the non-printable character U+{ord(ch):04X} "
                f"at position {i + 1}; use printable characters only (no line breaks, tabs "
                "or control characters)"
            )


def _check_at(value: Any, where: str, allow_offset: bool) -> None:
    forms = "ISO 8601 (2026-03-01T10:00:00Z)" + (
        " or an offset from the start (+0s, +2d, +1d6h)" if allow_offset else ""
    )
    if isinstance(value, str):
        text = value.strip()
        if allow_offset and OFFSET_RE.match(text):
            return
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            return
        except ValueError:
            pass
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise EventError(f"{where}: error: 'at' is not a time: {shown!r}; write it as {forms}")
    raise EventError(f"{where}: error: 'at' must be a string in {forms}, got {_json_kind(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return f"the number {value}"
    if isinstance(value, str):
        return "an empty string"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


async def send_event(
    client,
    event: dict,
    task_queue: str = TASK_QUEUE,
    clock_offset: float = 0.0,
    history_limit: int | None = None,
    allow_offset: bool = False,
    send_heartbeat_seconds: float | None = None,
) -> str:
    """Deliver one event to its customer's entity, starting it if needed; returns the id.

    The event is checked first (``parse_event``: ``EventError`` and nothing sent if bad).
    ``clock_offset`` (seconds, simulations only) applies when this starts the entity;
    ``allow_offset`` (simulations only) lets ``at`` be an offset such as ``+2d``;
    ``send_heartbeat_seconds`` (tests) the send activity's heartbeat timeout when this starts
    the entity (default 15 s: how soon a send on a worker that died is retried)."""
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


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """A client from ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE`` / TLS / API key settings."""
    from engine.runtime.settings import Settings

    settings = Settings.from_env()
    address = address or settings.temporal_target
    namespace = namespace or settings.temporal_namespace
    kwargs: dict = {}
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
    last: Exception | None = None
    for _ in range(50):
        try:
            return await Client.connect(address, namespace=namespace, **kwargs)
        except RuntimeError as err:  # server still starting
            last = err
            await asyncio.sleep(0.2)
    raise RuntimeError(f"cannot reach Temporal at {address}: {last}")
