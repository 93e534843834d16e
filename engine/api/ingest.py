"""Turning an HTTP request body into checked events (CONTRACT.md §2, §5).

In: the raw body of ``POST /v1/events`` (one event, or ``{"batch": [...]}``) or of a
Segment endpoint (``/v1/track``, ``/v1/identify``, ``/v1/batch``). Out: a ``Parsed`` with the
events to send (each already passed ``dsl.contract.parse_event``), the problems (one per bad
event: its index and what to fix) and the messages deliberately ignored (Segment calls that
are not events here). Pure: no I/O, no Temporal, unit-tested on its own.

A request is checked whole: the caller sends nothing unless ``problems`` is empty.

Limits: ``MAX_REQUEST_BYTES`` (500 KB) is enforced by the app while reading the body
(``read_limited``), before this module sees it; nesting is checked in one linear pass before
the JSON is decoded (so a 10,000-deep body never reaches the recursive decoder); each event
is then held to the 32 KB / 32 levels of §2 by ``parse_event``, and, when the rules
declare a ``schema:``, to its field types (``dsl.schema.check_event``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from dsl.contract import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    EventError,
    loads_finite,
    max_depth,
    parse_event,
)
from dsl.schema import ERROR, check_event

MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500  # 500 KB of the smallest useful events; more is refused, not truncated
# A batch wraps events two levels deep ({"batch": [event]}).
MAX_BODY_DEPTH = MAX_EVENT_DEPTH + 2
SEGMENT_EVENT_TYPES = ("track", "identify")
# Segment calls acknowledged but not turned into events: page views and screens would cost
# a workflow task each for nothing a rule can use, group and alias have no customer event.
SEGMENT_IGNORED_TYPES = ("page", "screen", "group", "alias")


class RequestTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        self.size = size
        shown = f"{size:,} bytes" if size is not None else f"more than {MAX_REQUEST_BYTES:,} bytes"
        super().__init__(
            f"the request is {shown}; at most {MAX_REQUEST_BYTES:,} bytes (500 KB) are allowed"
            f" per request and {MAX_EVENT_BYTES:,} (32 KB) per event: send smaller batches"
        )


class BodyError(ValueError):
    """The body as a whole is unusable (not JSON, wrong shape): 400, nothing sent."""


@dataclass
class Problem:
    index: int | None  # the event's position in the batch; None: the request as a whole
    error: str
    path: str = ""  # the field, for a schema: problem ("customer.birthday", "data.total")

    def as_dict(self) -> dict:
        out: dict = {"index": self.index, "error": self.error}
        if self.path:
            out["path"] = self.path
        return out


@dataclass
class Parsed:
    events: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)  # {"index", "reason"}
    warnings: list[dict] = field(default_factory=list)  # {"index", "path", "warning"}


async def read_limited(
    chunks: AsyncIterator[bytes], declared: str | None, limit: int = MAX_REQUEST_BYTES
) -> bytes:
    """The body, read chunk by chunk, refused as soon as it passes ``limit`` bytes (a
    declared ``Content-Length`` over it is refused before reading anything)."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BodyError("Content-Length is not a number") from None
        if size > limit:
            raise RequestTooLarge(size)
    parts, total = [], 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise RequestTooLarge(None)
        parts.append(chunk)
    return b"".join(parts)


def decode(body: bytes) -> Any:
    """The JSON value of ``body``; ``BodyError`` saying what is wrong."""
    if not body.strip():
        raise BodyError("the body is empty; send a JSON object (Content-Type: application/json)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(f"the body is not UTF-8 (byte {err.start})") from None
    if max_depth(text) > MAX_BODY_DEPTH:
        raise BodyError(
            f"the body is nested more than {MAX_BODY_DEPTH} levels deep; an event may nest at"
            f" most {MAX_EVENT_DEPTH}"
        )
    try:
        return loads_finite(text)
    except json.JSONDecodeError as err:
        raise BodyError(
            f"not valid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except ValueError as err:
        raise BodyError(f"not usable JSON: {err}") from None


def _items(value: Any, what: str) -> list:
    if isinstance(value, dict) and set(value) >= {"batch"}:
        batch = value["batch"]
        if not isinstance(batch, list):
            raise BodyError(f"'batch' must be a list of {what}")
        if not batch:
            raise BodyError("'batch' is empty; send at least one event")
        if len(batch) > MAX_BATCH_EVENTS:
            raise BodyError(
                f"'batch' has {len(batch):,} events; at most {MAX_BATCH_EVENTS:,} per request"
            )
        return batch
    return [value]


# parse_event names the fields of §2; a Segment caller sent them under Segment's names.
SEGMENT_NAMES = {
    "'customer_id'": "'userId'",
    "'id'": "'messageId'",
    "'at'": "'timestamp'",
    "'data'": "'properties'",
}


def _check(
    parsed: Parsed,
    index: int,
    raw: dict,
    where: str,
    names: dict | None = None,
    schema=None,
) -> None:
    try:
        event = parse_event(raw, where=where)
    except EventError as err:
        # parse_event says "WHERE: error: MESSAGE"; the index is given on its own.
        message = str(err).split(": error: ", 1)[-1]
        for ours, theirs in (names or {}).items():
            message = message.replace(ours, theirs)
        parsed.problems.append(Problem(index, message))
        return
    # schema: (CONTRACT.md §7): a declared field of the wrong type refuses the request; an
    # undeclared one is a warning in the answer (an error with schema: {strict: true}).
    refused = False
    for problem in check_event(schema, event):
        if problem.severity == ERROR:
            parsed.problems.append(
                Problem(index, f"{problem.path}: {problem.message}", problem.path)
            )
            refused = True
        else:
            parsed.warnings.append(
                {"index": index, "path": problem.path, "warning": problem.message}
            )
    if not refused:
        parsed.events.append(event)


def native_events(body: Any, schema=None) -> Parsed:
    """``POST /v1/events``: one event of §2, or ``{"batch": [event, ...]}``."""
    parsed = Parsed()
    if isinstance(body, dict) and "batch" in body and set(body) - {"batch"}:
        raise BodyError('a batch is {"batch": [event, ...]} with no other keys')
    items = _items(body, "events")
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            parsed.problems.append(Problem(index, "an event is a JSON object"))
            continue
        _check(parsed, index, raw, f"event {index}", schema=schema)
    return parsed


def segment_events(kind: str, body: Any, schema=None) -> Parsed:
    """``/v1/track`` (kind ``track``), ``/v1/identify`` or ``/v1/batch`` (kind ``batch``):
    Segment's HTTP tracking API. ``userId`` → ``customer_id``, ``messageId`` → ``id``,
    ``event`` → ``type`` (track) or ``identify``, ``properties`` → ``data``, ``traits``
    (identify) or ``context.traits`` (track) → ``customer``, ``timestamp`` → ``at``. Every
    other field Segment's libraries send (``anonymousId``, ``context``, ``integrations``,
    ``sentAt``, ``writeKey``, ...) is accepted and not used."""
    if not isinstance(body, dict):
        raise BodyError("a Segment call is a JSON object")
    parsed = Parsed()
    if kind == "batch":
        items = _items(body if "batch" in body else {"batch": None}, "Segment calls")
        shared_context = body.get("context") if isinstance(body.get("context"), dict) else {}
    else:
        items, shared_context = [dict(body, type=body.get("type") or kind)], {}
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            parsed.problems.append(Problem(index, "a Segment call is a JSON object"))
            continue
        call = raw.get("type")
        if kind != "batch" and call != kind:
            parsed.problems.append(
                Problem(index, f"'type' is {call!r} but this is /v1/{kind}; leave it out")
            )
            continue
        if call in SEGMENT_IGNORED_TYPES:
            parsed.ignored.append({"index": index, "reason": f"{call} calls are not events here"})
            continue
        if call not in SEGMENT_EVENT_TYPES:
            parsed.problems.append(
                Problem(
                    index,
                    f"'type' must be one of track, identify, page, screen, group, alias; got {call!r}",
                )
            )
            continue
        size = len(json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_EVENT_BYTES:
            parsed.problems.append(
                Problem(index, f"the call is {size:,} bytes; at most {MAX_EVENT_BYTES:,} (32 KB)")
            )
            continue
        user = raw.get("userId")
        if user is None or user == "":
            if raw.get("anonymousId"):
                parsed.ignored.append(
                    {"index": index, "reason": "no userId (anonymous calls have no customer)"}
                )
            else:
                parsed.problems.append(Problem(index, "'userId' is required (the customer's id)"))
            continue
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)  # some libraries send numeric ids
        event: dict = {"customer_id": user}
        if call == "track":
            event["type"] = raw.get("event")
            if not isinstance(event["type"], str) or not event["type"].strip():
                parsed.problems.append(Problem(index, "'event' (the event's name) is required"))
                continue
            context = raw.get("context") if isinstance(raw.get("context"), dict) else shared_context
            traits = context.get("traits") if isinstance(context, dict) else None
            if not _object_or_none(parsed, index, raw, "properties"):
                continue
            if traits is not None and not isinstance(traits, dict):
                parsed.problems.append(Problem(index, "'context.traits' must be a JSON object"))
                continue
            event["data"] = raw.get("properties") or {}
            event["customer"] = traits or {}
        else:
            event["type"] = "identify"
            if not _object_or_none(parsed, index, raw, "traits"):
                continue
            event["customer"] = raw.get("traits") or {}
        for source, target in (("messageId", "id"), ("timestamp", "at")):
            if raw.get(source) is not None:
                event[target] = raw[source]
        _check(parsed, index, event, f"call {index}", SEGMENT_NAMES, schema)
    return parsed


def _object_or_none(parsed: Parsed, index: int, raw: dict, name: str) -> bool:
    if raw.get(name) is not None and not isinstance(raw.get(name), dict):
        parsed.problems.append(Problem(index, f"'{name}' must be a JSON object"))
        return False
    return True
