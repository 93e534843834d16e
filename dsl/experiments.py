"""Who lands in which variant of an experiment, and in a journey's holdout (CONTRACT.md §8).

In: a customer id, a journey name, an experiment name and the variants' shares (in basis
points, 10000 = 100 %). Out: ``assign`` (the variant's name), ``in_holdout`` (True or
False) and ``bucket`` (the number in 0..9999 both are read from); ``converted`` (whether a
goal event counts as a conversion: the attribution window).

Pure and deterministic: the bucket is the first 8 bytes of SHA-256 over the three names,
so the same customer gets the same answer on re-entry, on replay, on any worker and in
any Python (no ``hash()``, whose seed changes per process, and no randomness). Standard
library only: the workflow sandbox imports this.

The holdout uses the experiment name ``""`` (no split can have it), so it is drawn
independently of every split in the journey: a split's shares hold among the customers
who are not held out.
"""

from __future__ import annotations

import hashlib

from dsl.clock import parse_iso

BASIS = 10000  # shares are in basis points: 10000 = 100 %


def bucket(customer_id: str, journey: str, experiment: str) -> int:
    """A stable number in ``0 .. BASIS - 1`` for this customer, journey and experiment."""
    key = "\x1f".join((journey, experiment, customer_id)).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BASIS


def assign(customer_id: str, journey: str, experiment: str, shares: list[tuple[str, int]]) -> str:
    """The variant (by name) of ``shares`` (name, basis points; summing to ``BASIS``, in
    the order written) this customer runs."""
    b = bucket(customer_id, journey, experiment)
    upto = 0
    for name, weight in shares:
        upto += weight
        if b < upto:
            return name
    return shares[-1][0]  # shares that do not sum to BASIS (the compiler refuses them)


def in_holdout(customer_id: str, journey: str, share: int) -> bool:
    """Whether this customer is in the journey's holdout of ``share`` basis points."""
    return share > 0 and bucket(customer_id, journey, "") < share


def converted(started_at: str, goal_at: str, window_seconds: int) -> bool:
    """Whether a goal event at ``goal_at`` (ISO 8601; empty: none came) counts as a
    conversion of a journey entered at ``started_at``: within ``window_seconds`` of entry
    (the end of the window included), or at any time when the window is 0."""
    if not goal_at:
        return False
    if not window_seconds:
        return True
    elapsed = parse_iso(goal_at) - parse_iso(started_at)
    return elapsed.total_seconds() <= window_seconds
