"""The expression language's function library: signatures for the compiler, code for the
evaluator.

In: a function name. Out: a ``Function`` with its arity, argument and result types (for
compile-time checks) and a null-safe implementation (for run time).

Types are coarse: "str", "number", "bool", "list", "any". Every implementation takes the
evaluation's ``now`` (a timezone-aware datetime) as its first argument, so the library stays
deterministic inside a Temporal workflow, and returns ``None`` rather than raising on a value
of the wrong type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dsl.clock import parse_iso


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[str, ...]  # the type of each argument
    returns: str
    impl: Callable[..., Any]
    doc: str
    min_args: int | None = None  # when some trailing arguments are optional

    @property
    def arity(self) -> tuple[int, int]:
        lo = len(self.params) if self.min_args is None else self.min_args
        return lo, len(self.params)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` allowed) or epoch seconds as an aware datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _len(now, x):
    return len(x) if isinstance(x, (str, list, dict)) else None


def _lower(now, x):
    return x.lower() if isinstance(x, str) else None


def _upper(now, x):
    return x.upper() if isinstance(x, str) else None


def _since(unit: float):
    def impl(now, x):
        t = parse_time(x)
        return None if t is None or now is None else (now - t).total_seconds() / unit

    return impl


def _until(unit: float):
    def impl(now, x):
        t = parse_time(x)
        return None if t is None or now is None else (t - now).total_seconds() / unit

    return impl


def _now(now):
    # no `now` in the context (a tool evaluating outside a workflow): null, not an error
    return None if now is None else now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default(now, x, fallback):
    return fallback if x is None else x


def _round(now, x, digits=0):
    # Bounded: round(int, -10**9) computes 10**(10**9) and never returns.
    if not _num(x) or not _num(digits) or not -308 <= digits <= 308:
        return None
    return round(x, int(digits)) if digits else round(x)


def _abs(now, x):
    return abs(x) if _num(x) else None


def _min(now, a, b):
    return min(a, b) if _num(a) and _num(b) else None


def _max(now, a, b):
    return max(a, b) if _num(a) and _num(b) else None


def _contains(now, haystack, needle):
    if isinstance(haystack, list):
        return needle in haystack
    if isinstance(haystack, str) and isinstance(needle, str):
        return needle in haystack
    return False


def _starts_with(now, s, prefix):
    return isinstance(s, str) and isinstance(prefix, str) and s.startswith(prefix)


_DAY = 86400.0
_HOUR = 3600.0

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("len", ("any",), "number", _len, "length of a string, list or object"),
        Function("lower", ("str",), "str", _lower, "lower-cased string"),
        Function("upper", ("str",), "str", _upper, "upper-cased string"),
        Function("days_since", ("any",), "number", _since(_DAY), "days from a timestamp to now"),
        Function("hours_since", ("any",), "number", _since(_HOUR), "hours from a timestamp to now"),
        Function("days_until", ("any",), "number", _until(_DAY), "days from now to a timestamp"),
        Function("now", (), "str", _now, "the current time, ISO 8601 UTC"),
        Function("default", ("any", "any"), "any", _default, "the first value unless it is null"),
        Function("round", ("number", "number"), "number", _round, "rounded number", min_args=1),
        Function("abs", ("number",), "number", _abs, "absolute value"),
        Function("min", ("number", "number"), "number", _min, "the smaller number"),
        Function("max", ("number", "number"), "number", _max, "the larger number"),
        Function("contains", ("any", "any"), "bool", _contains, "list member or substring"),
        Function("starts_with", ("str", "str"), "bool", _starts_with, "string prefix test"),
    )
}
