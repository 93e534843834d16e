"""An address is sent to only as ONE address without control characters: anything else
is reported (``bounced``, with the reason) and never repaired into a different address.
Through the real email activity, a real aiosmtpd sink and a real SQLite ledger; what the
sink received is what counts."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from engine.delivery.email_activity import EmailActivities
from engine.delivery.ledger import open_ledger
from engine.delivery.message import AddressError, address_of
from tests.engine.test_email_activity import make_input


@pytest.fixture
async def acts(tmp_path, templates_dir, smtp_settings):
    acts = EmailActivities(templates_dir, smtp_settings, await open_ledger(None, tmp_path / "l"))
    yield acts
    await acts.close()


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        (
            "ann@x.test\r\nBcc: evil@x.test",
            "not a single email address: 'ann@x.test\\r\\nBcc: evil@x.test' contains the "
            "control character U+000D at position 11",
        ),
        (
            '"evil" <ann@x.test>, bob@evil.test',
            "not a single email address: '\"evil\" <ann@x.test>, bob@evil.test' holds 2 addresses",
        ),
        (
            "ann@x.test\x00",
            "not a single email address: 'ann@x.test\\x00' contains the "
            "control character U+0000 at position 11",
        ),
        (
            "team: a@x.test, b@x.test;",
            "not a single email address: 'team: a@x.test, b@x.test;' holds 2 addresses",
        ),
    ],
    ids=["crlf-bcc", "two-addresses", "nul", "group"],
)
async def test_a_bad_recipient_is_bounced_with_the_reason_and_nothing_is_sent(
    acts, sink, to, reason
):
    env = ActivityEnvironment()
    result = await env.run(acts.send_email, make_input("bad/1", to=to))
    assert (result.status, result.detail) == ("bounced", reason)
    assert (await acts.ledger.get("bad/1")).status == "bounced"
    # The sink works and got only the good message sent after the bad one.
    await env.run(acts.send_email, make_input("good/1"))
    (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["ann@example.test"]
    assert [m.rcpt_tos for m in sink.messages] == [["ann@example.test"]]


async def test_a_bad_sender_fails_the_step_and_sends_nothing(acts, sink):
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            acts.send_email, make_input("bad/2", sender="Acme <hello@acme.test>\nBcc: x@evil.test")
        )
    assert err.value.type == "InvalidSender" and err.value.non_retryable
    assert "contains the control character U+000A" in str(err.value)
    await ActivityEnvironment().run(acts.send_email, make_input("good/2"))
    sink.wait_for(1)
    assert [m.mail_from for m in sink.messages] == ["hello@acme.test"]


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("ann@x.test", "ann@x.test"),
        ("Acme <hello@acme.test>", "hello@acme.test"),
        ('"Ann, B." <ann@x.test>', "ann@x.test"),
        ("Lifecycle <lifecycle@localhost>", "lifecycle@localhost"),
    ],
)
def test_single_addresses_are_accepted(value, address):
    assert address_of(value) == address


@pytest.mark.parametrize(
    "value", ["", "ann", "ann@", "a..b@x.test", "Ann <ann@x.test", "a b@x.test", "a@b@c", "<>"]
)
def test_malformed_addresses_are_refused(value):
    with pytest.raises(AddressError):
        address_of(value)
