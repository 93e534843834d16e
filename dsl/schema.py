"""Does an event fit the declared data (``schema:`` in rules, CONTRACT.md §7)?

In: a ``dsl.ir.Schema`` (or None: nothing declared) and an event already checked by
``dsl.contract.parse_event``. Out: ``check_event`` → a list of ``Problem`` (the field's
path in the event, e.g. ``customer.birthday`` or ``data.total``, a message that says what
to send instead, and whether it is an ``error`` or a ``warning``). Every way in refuses an
event with an error (``send-event``, the HTTP API's 400 with the field path); a warning
(an undeclared field, unless ``strict``) is reported and the event goes in.

A declared field may be null (a field can be cleared). Types: text, email (one address),
timezone (an IANA name), date (``YYYY-MM-DD`` or ``MM-DD``), datetime (ISO 8601), number,
bool, list, map. Pure and standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dsl.clock import parse_iso
from dsl.errors import did_you_mean
from dsl.ir import Schema
from dsl.schedule import DATE_RE, MONTH_DAY_RE
from dsl.zones import zone_named

ERROR = "error"
WARNING = "warning"
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_WANT = {
    "text": "a string",
    "email": 'an email address ("ann@example.test")',
    "timezone": 'an IANA time zone ("Europe/Berlin")',
    "date": 'a date ("1990-04-20", or "04-20" for a yearly date)',
    "datetime": 'an ISO 8601 date-time ("2026-03-01T10:00:00Z")',
    "number": "a number",
    "bool": "true or false",
    "list": "a list",
    "map": "an object",
}


@dataclass(frozen=True)
class Problem:
    path: str  # where in the event: "customer.birthday", "data.total"
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def check_event(schema: Schema | None, event: dict) -> list[Problem]:
    """Every way ``event`` does not fit ``schema`` (errors first, then warnings)."""
    if schema is None:
        return []
    problems: list[Problem] = []
    customer = event.get("customer") or {}
    if schema.customer and isinstance(customer, dict):
        problems += _check_fields(schema.customer, customer, "customer", schema.strict)
    data = event.get("data") or {}
    declared = schema.events.get(event.get("type", ""))
    if declared is not None and isinstance(data, dict):
        problems += _check_fields(declared, data, "data", schema.strict)
    return sorted(problems, key=lambda p: (p.severity != ERROR, p.path))


def _check_fields(fields: dict[str, str], values: dict, root: str, strict: bool) -> list[Problem]:
    out = []
    for name, value in values.items():
        kind = fields.get(name)
        path = f"{root}.{name}"
        if kind is None:
            hint = did_you_mean(name, fields)
            message = "not a declared field" + (f"; {hint}" if hint else "")
            out.append(Problem(path, message, ERROR if strict else WARNING))
            continue
        if value is not None and not fits(kind, value):
            out.append(Problem(path, f"must be {_WANT[kind]}, not {_shown(value)}"))
    return out


def load_schema(rules_dir) -> Schema | None:
    """The ``schema:`` of the rules under ``rules_dir`` (None when none declares one);
    conflicts between files are ``lifecycle validate``'s to report."""
    from dsl.loader import load_rules

    files, _ = load_rules(rules_dir)
    raws = [f.schema for f in files if f.schema is not None]
    if not raws:
        return None
    schema = Schema(customer={}, events={})
    for raw in raws:
        schema.strict = schema.strict or raw.strict
        schema.customer.update({n.value: k.value for n, k in raw.customer})
        for event, fields in raw.events:
            schema.events.setdefault(event.value, {}).update({n.value: k.value for n, k in fields})
    return schema


def fits(kind: str, value: Any) -> bool:
    """Whether ``value`` (not null) is a value of the declared type ``kind``."""
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    if not isinstance(value, str):
        return False
    if kind == "email":
        return bool(_EMAIL.match(value))
    if kind == "timezone":
        return zone_named(value) is not None
    if kind == "date":
        return bool(DATE_RE.match(value) or MONTH_DAY_RE.match(value)) and _real_date(value)
    if kind == "datetime":
        try:
            parse_iso(value)
            return True
        except ValueError:
            return False
    return True  # text


def _real_date(value: str) -> bool:
    from datetime import date

    parts = [int(p) for p in value.lstrip("-").split("-")]
    year, month, day = parts if len(parts) == 3 else [2000, *parts]
    try:
        date(year, month, day)
        return True
    except ValueError:
        return False


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"{text!r}"
    return "a list" if isinstance(value, list) else "an object"
