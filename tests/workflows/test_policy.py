"""The send policy (workflows/policy.py) as a table: every input it decides on, and what it
decides. Contact policy (suppress, defer) adds rows here."""

from __future__ import annotations

import pytest

from workflows.policy import NO_ADDRESS, SEND, SKIP, SendDecision, decide_send

NO_ADDRESS_DETAIL = "customer has no email address"

CASES = [
    # (kind, address, decision)
    ("send", "ann@example.test", SendDecision(SEND, to="ann@example.test")),
    ("send", "Ann <ann@example.test>", SendDecision(SEND, to="Ann <ann@example.test>")),
    ("notify", "support@acme.test", SendDecision(SEND, to="support@acme.test")),
    ("send", None, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", "", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", "ann.example.test", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", 42, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", ["a@b.test"], SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("send", {"email": "a@b"}, SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
    ("notify", "", SendDecision(SKIP, reason=NO_ADDRESS, detail=NO_ADDRESS_DETAIL)),
]


@pytest.mark.parametrize(("kind", "address", "expected"), CASES)
def test_decide_send(kind, address, expected):
    assert decide_send(kind, address) == expected
