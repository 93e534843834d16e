"""The send policy: where every decision to send an email, or not, is made.

In: what the interpreter knows at a ``send`` / ``notify`` step (the step's kind and the
address it would go to). Out: a ``SendDecision``: ``send`` (to that address) or ``skip``
(with a reason and a detail for the journal). Contact policy lands here next: ``suppress``
(unsubscribed, bounced, capped, holdout) and ``defer`` (quiet hours, frequency cap), with
the customer's profile, settings and clock as further inputs (CONTRACT.md §6).

Pure: no Temporal, no I/O, no clock of its own; importable in the workflow sandbox and
tested as a table (tests/workflows/test_policy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEND = "send"
SKIP = "skip"
NO_ADDRESS = "no_address"


@dataclass(frozen=True)
class SendDecision:
    action: str  # "send" | "skip" (next: "suppress", "defer")
    to: str = ""  # for "send": the recipient
    reason: str = ""  # for anything but "send": a stable code
    detail: str = ""  # for the journal: what happened, in words


def decide_send(kind: str, address: Any) -> SendDecision:
    """Whether a ``send`` (``address``: the profile's ``email``) or a ``notify``
    (``address``: the team's address) goes out now."""
    if not isinstance(address, str) or "@" not in address:
        return SendDecision(SKIP, reason=NO_ADDRESS, detail="customer has no email address")
    return SendDecision(SEND, to=address)
