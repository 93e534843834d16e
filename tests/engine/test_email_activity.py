"""The send_email activity through Temporal's ActivityEnvironment, with a real SMTP sink
and a real SQLite ledger."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from engine.delivery.email_activity import FAULT_PAUSE_ENV, EmailActivities, SendEmailInput
from engine.delivery.ledger import open_ledger
from engine.delivery.message import message_id_for
from engine.delivery.smtp import SmtpSettings
from engine.tools.smtp_sink import SmtpSink, free_port
from tests.engine.faulty_smtp import DroppingRelay

SENDER = "Acme <hello@acme.test>"


def make_input(key: str = "wf-1/step-0", **overrides) -> SendEmailInput:
    fields = dict(
        idempotency_key=key,
        kind="send",
        template="welcome",
        to="ann@example.test",
        sender=SENDER,
        customer_id="c-42",
        journey="welcome-series",
        context={"customer": {"name": "Ann", "email": "ann@example.test"}, "trigger": {}},
        unsubscribe_url="https://acme.test/unsubscribe/c-42",
        sent_at="2026-01-03T00:00:00Z",
    )
    fields.update(overrides)
    return SendEmailInput(**fields)


@pytest.fixture
async def ledger(tmp_path):
    return await open_ledger(None, tmp_path / "ledger.sqlite")


@pytest.fixture
async def acts(templates_dir, smtp_settings, ledger):
    acts = EmailActivities(templates_dir, smtp_settings, ledger)
    yield acts
    await acts.close()


async def test_send_delivers_one_message(acts, sink, ledger):
    result = await ActivityEnvironment().run(acts.send_email, make_input())
    assert (result.status, result.subject, result.to, result.detail) == (
        "sent",
        "Hello Ann",
        "ann@example.test",
        "",
    )
    assert result.message_id == message_id_for("wf-1/step-0", SENDER)
    (got,) = sink.wait_for(1)
    assert got.mail_from == "hello@acme.test" and got.rcpt_tos == ["ann@example.test"]
    msg = got.message
    assert msg["Message-ID"] == result.message_id
    assert msg["Date"] == "Sat, 03 Jan 2026 00:00:00 +0000"
    assert msg["X-Lifecycle-Journey"] == "welcome-series"
    assert msg["X-Lifecycle-Customer"] == "c-42"
    assert msg["List-Unsubscribe"] == "<https://acme.test/unsubscribe/c-42>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://acme.test/unsubscribe/c-42" in msg.get_body(("html",)).get_content()
    assert (await ledger.get("wf-1/step-0")).status == "sent"


async def test_same_key_again_is_a_duplicate_without_smtp_traffic(acts, sink):
    env = ActivityEnvironment()
    first = await env.run(acts.send_email, make_input())
    # Even a template that would now fail is not rendered for a known key.
    second = await env.run(acts.send_email, make_input(template="typo"))
    assert second.status == "duplicate"
    assert (second.message_id, second.subject, second.to) == (
        first.message_id,
        first.subject,
        first.to,
    )
    assert second.detail == "already sent"
    sink.wait_for(1)
    await asyncio.sleep(0.2)  # let a (wrong) second delivery arrive before counting
    assert len(sink.messages) == 1


async def test_notify_has_no_unsubscribe_headers_and_empty_unsubscribe_variable(acts, sink):
    inp = make_input(kind="notify", to="support@acme.test")
    result = await ActivityEnvironment().run(acts.send_email, inp)
    assert result.status == "sent"
    msg = sink.wait_for(1)[0].message
    assert msg["List-Unsubscribe"] is None
    assert "Unsubscribe" not in msg.get_body(("html",)).get_content()


async def test_transactional_email_has_no_unsubscribe_headers_and_no_link(acts, sink):
    inp = make_input(message_class="transactional")
    result = await ActivityEnvironment().run(acts.send_email, inp)
    assert result.status == "sent"
    msg = sink.wait_for(1)[0].message
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert "unsubscribe" not in msg.get_body(("html",)).get_content().lower()


async def test_signed_links_go_to_the_api_and_a_shop_page_gets_its_token(
    templates_dir, smtp_settings, ledger, sink
):
    from engine.delivery.unsubscribe import Links, make_token

    acts = EmailActivities(templates_dir, smtp_settings, ledger, links=Links("s" * 20))
    try:
        env = ActivityEnvironment()
        inp = make_input("k-1", public_url="https://mail.acme.test", unsubscribe_url="")
        await env.run(acts.send_email, inp)
        own = make_input(
            "k-2",
            public_url="https://mail.acme.test",
            unsubscribe_url="https://acme.test/unsub?t={token}",
        )
        await env.run(acts.send_email, own)
        first, second = (m.message for m in sink.wait_for(2))
        token = make_token("s" * 20, "c-42")
        assert first["List-Unsubscribe"] == f"<https://mail.acme.test/u/{token}>"
        assert f"https://mail.acme.test/u/{token}" in first.get_body(("html",)).get_content()
        assert second["List-Unsubscribe"] == f"<https://mail.acme.test/u/{token}>"
        assert f"https://acme.test/unsub?t={token}" in second.get_body(("html",)).get_content()
    finally:
        await acts.close()


async def test_customer_data_cannot_inject_headers_on_the_wire(acts, sink):
    evil = "Ann\r\nBcc: evil@x.test\x00\tX-Evil: 1\u2028Cc: also@x.test"
    ctx = {"customer": {"name": evil}, "trigger": {}}
    result = await ActivityEnvironment().run(acts.send_email, make_input(context=ctx))
    assert result.status == "sent"
    (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["ann@example.test"]
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    header_names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")]
    assert b"bcc" not in header_names and b"cc" not in header_names
    assert b"x-evil" not in header_names
    assert b"\x00" not in got.raw and b"\t" not in head
    assert got.message["Subject"] == "Hello Ann Bcc: evil@x.test X-Evil: 1 Cc: also@x.test"


async def test_5xx_bounce_is_a_result_and_recorded(templates_dir, ledger):
    with SmtpSink(reject=lambda rcpt: "550 5.1.1 no such user") as s:
        acts = EmailActivities(templates_dir, SmtpSettings(port=s.port, starttls="false"), ledger)
        try:
            result = await ActivityEnvironment().run(acts.send_email, make_input())
            assert (result.status, result.detail) == ("bounced", "550 5.1.1 no such user")
            again = await ActivityEnvironment().run(acts.send_email, make_input())
        finally:
            await acts.close()
        assert s.messages == []
    assert (again.status, again.detail) == ("duplicate", "already bounced: 550 5.1.1 no such user")


async def test_customer_without_an_address_is_bounced_without_smtp(acts, sink, ledger):
    result = await ActivityEnvironment().run(acts.send_email, make_input(to=""))
    assert (result.status, result.detail) == ("bounced", "not an email address: ''")
    assert (await ledger.get("wf-1/step-0")).status == "bounced"
    assert sink.messages == []


async def test_bad_sender_is_non_retryable(acts):
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.send_email, make_input(sender="Acme"))
    assert (err.value.type, err.value.non_retryable) == ("InvalidSender", True)


async def test_smtp_down_is_retryable_then_delivers_once_when_back(templates_dir, ledger):
    port = free_port()
    acts = EmailActivities(templates_dir, SmtpSettings(port=port, starttls="false"), ledger)
    env = ActivityEnvironment()
    try:
        with pytest.raises(ApplicationError) as err:
            await env.run(acts.send_email, make_input())
        assert (err.value.type, err.value.non_retryable) == ("SmtpUnavailable", False)
        assert await ledger.get("wf-1/step-0") is None
        with SmtpSink(port=port) as s:
            result = await env.run(acts.send_email, make_input())
            assert result.status == "sent"
            assert (await env.run(acts.send_email, make_input())).status == "duplicate"
            s.wait_for(1)
            await asyncio.sleep(0.2)
            assert len(s.messages) == 1
    finally:
        await acts.close()


async def test_template_error_is_non_retryable_and_names_file_and_line(acts, sink, ledger):
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.send_email, make_input(template="typo"))
    assert err.value.type == "TemplateError"
    assert err.value.non_retryable is True
    assert err.value.message == "typo.html.j2:3: 'dict object' has no attribute 'nmae'"
    assert await ledger.get("wf-1/step-0") is None
    assert sink.messages == []


async def test_with_args_and_layout_reach_the_template(acts, sink):
    ctx = {"customer": {"name": "Ann"}, "trigger": {}, "discount": 10}
    result = await ActivityEnvironment().run(
        acts.send_email, make_input(template="nudge", context=ctx)
    )
    assert result.subject == "Your first order, Ann?"
    msg = sink.wait_for(1)[0].message
    assert msg.get_body(("plain",)).get_content().strip() == "Take 10% off, Ann."


async def test_fault_pause_happens_after_the_ledger_record(acts, sink, ledger, monkeypatch):
    # The crash test kills the worker inside this pause; the record must already exist.
    monkeypatch.setenv(FAULT_PAUSE_ENV, "30")
    task = asyncio.create_task(ActivityEnvironment().run(acts.send_email, make_input()))
    try:
        for _ in range(500):
            if await ledger.get("wf-1/step-0") is not None:
                break
            await asyncio.sleep(0.02)
        assert (await ledger.get("wf-1/step-0")).status == "sent"
        assert not task.done()
        assert len(sink.wait_for(1)) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_drop_after_data_fails_the_attempt_with_one_copy_sent(templates_dir, ledger):
    # Issue 7 case 4: the relay stores the message and drops the connection before its
    # reply. One attempt transmits the message once and fails retryably; the next attempt
    # (Temporal's retry, after its backoff) sends the same Message-ID again.
    with DroppingRelay(drops=1) as relay:
        settings = SmtpSettings(port=relay.port, starttls="false", timeout=5)
        acts = EmailActivities(templates_dir, settings, ledger)
        env = ActivityEnvironment()
        try:
            with pytest.raises(ApplicationError) as err:
                await env.run(acts.send_email, make_input())
            assert (err.value.type, err.value.non_retryable) == ("SmtpUnavailable", False)
            assert relay.data_commands == 1
            assert await ledger.get("wf-1/step-0") is None
            result = await env.run(acts.send_email, make_input())
        finally:
            await acts.close()
    assert result.status == "sent"
    assert [m["Message-ID"] for m in relay.stored] == [result.message_id] * 2


async def test_a_live_claim_of_another_attempt_blocks_sending_until_its_lease_ends(
    acts, sink, ledger
):
    # Another attempt (timed out by Temporal but maybe still running, or just crashed)
    # holds the claim: this attempt must not send; once the lease has run out (a real
    # crash), a later attempt takes over and sends, with the same Message-ID.
    await ledger.claim("wf-1/step-0", "wf/1#1/dead", lease=0.3)
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.send_email, make_input())
    assert (err.value.type, err.value.non_retryable) == ("SendInProgress", False)
    assert err.value.message.startswith("another attempt (wf/1#1/dead) may be sending this email")
    assert sink.messages == []
    await asyncio.sleep(0.4)
    result = await env.run(acts.send_email, make_input())
    assert result.status == "sent"
    assert [m.message["Message-ID"] for m in sink.wait_for(1)] == [
        message_id_for("wf-1/step-0", SENDER)
    ]


async def test_an_attempt_that_lost_its_claim_stops_before_data(templates_dir, tmp_path):
    # The attempt stalls at RCPT past its lease and another attempt takes the claim over:
    # the check right before DATA stops it; the relay receives nothing.
    path = tmp_path / "ledger.sqlite"
    ledger = await open_ledger(None, path)
    with DroppingRelay(rcpt_delay=0.5) as relay:
        settings = SmtpSettings(port=relay.port, starttls="false", timeout=5)
        acts = EmailActivities(templates_dir, settings, ledger)
        try:
            task = asyncio.create_task(ActivityEnvironment().run(acts.send_email, make_input()))
            claimed = None
            while claimed is None:  # the attempt's claim, then its lease running out
                await asyncio.sleep(0.02)
                with sqlite3.connect(path) as conn:
                    claimed = conn.execute("SELECT owner FROM sent_ledger_claim").fetchone()
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE sent_ledger_claim SET owner = 'attempt-2', expires_at = 1e12")
            with pytest.raises(ApplicationError) as err:
                await task
        finally:
            await acts.close()
        assert err.value.type == "SendInProgress"
        assert err.value.message == (
            "this attempt lost its claim on the email (attempt-2 holds it now); nothing was sent"
        )
        assert relay.data_commands == 0


async def test_cancelled_during_data_the_attempt_finishes_and_records(templates_dir, ledger):
    # Temporal times an attempt out (the SDK cancels it) while DATA is under way: the
    # message may be out, so the attempt finishes and records it before it stops; the
    # retry then finds the record and sends nothing.
    with DroppingRelay(data_delay=0.5) as relay:
        settings = SmtpSettings(port=relay.port, starttls="false", timeout=5)
        acts = EmailActivities(templates_dir, settings, ledger)
        try:
            task = asyncio.create_task(ActivityEnvironment().run(acts.send_email, make_input()))
            while relay.data_commands == 0:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await ledger.get("wf-1/step-0")).status == "sent"
            retry = await ActivityEnvironment().run(acts.send_email, make_input())
        finally:
            await acts.close()
    assert retry.status == "duplicate"
    assert relay.data_commands == 1
