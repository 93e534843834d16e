"""The email activity's side of the contact policy (CONTRACT.md §6): the shared suppression
list in the ledger's database (SQLite and PostgreSQL), transactional email without an
unsubscribe link, and DKIM signing verified with dkimpy against the public key."""

from __future__ import annotations

import base64
import shutil
import subprocess

import dkim
import pytest
from temporalio.testing import ActivityEnvironment

from engine.delivery.email_activity import EmailActivities
from engine.delivery.ledger import open_ledger
from engine.delivery.signing import DkimError, DkimSigner, signer_from
from engine.runtime.settings import Settings
from engine.tools.smtp_sink import SmtpSink
from tests.engine.test_email_activity import make_input


@pytest.fixture
async def ledger(tmp_path):
    return await open_ledger(None, tmp_path / "ledger.sqlite")


async def test_a_hard_bounce_suppresses_the_address_for_every_customer(
    templates_dir, ledger, tmp_path
):
    with SmtpSink(reject=lambda rcpt: "550 5.1.1 no such user") as s:
        acts = EmailActivities(templates_dir, _smtp(s), ledger)
        env = ActivityEnvironment()
        first = await env.run(acts.send_email, make_input("c-1/e/j:1/0"))
        assert (first.status, first.detail) == ("bounced", "550 5.1.1 no such user")
    assert await ledger.suppressed("ANN@example.test") == "550 5.1.1 no such user"
    with SmtpSink() as s:
        acts = EmailActivities(templates_dir, _smtp(s), ledger)
        # Another customer id, another journey, the same address (written differently).
        other = make_input("c-2/e/k:1/0", customer_id="c-2", to="Ann <Ann@Example.test>")
        result = await ActivityEnvironment().run(acts.send_email, other)
        assert (result.status, result.detail) == ("suppressed", "bounced: 550 5.1.1 no such user")
        assert s.messages == []  # nothing was sent
        # The outcome is recorded: a retry of the same key is a duplicate.
        again = await ActivityEnvironment().run(acts.send_email, other)
        assert again.status == "duplicate"
        ok = await ActivityEnvironment().run(
            acts.send_email, make_input("c-3/e/j:1/0", to="bob@x.test")
        )
        assert ok.status == "sent"


async def test_the_suppression_list_on_postgres(postgres_url, pg_table):
    ledger = await open_ledger(postgres_url, None, table=pg_table)
    try:
        assert await ledger.suppressed("a@b.test") is None
        await ledger.suppress("A@B.test", "550 first")
        await ledger.suppress("a@b.test", "550 second")  # the first detail is kept
        assert await ledger.suppressed("a@B.TEST") == "550 first"
    finally:
        await ledger.close()


async def test_transactional_email_has_no_unsubscribe_link(
    templates_dir, ledger, sink, smtp_settings
):
    acts = EmailActivities(templates_dir, smtp_settings, ledger)
    await ActivityEnvironment().run(
        acts.send_email, make_input("k/1", message_class="transactional")
    )
    await ActivityEnvironment().run(acts.send_email, make_input("k/2"))
    transactional, marketing = (m.message for m in sink.wait_for(2))
    assert "List-Unsubscribe" not in transactional
    assert "List-Unsubscribe-Post" not in transactional
    assert "https://acme.test/unsubscribe" not in transactional.get_body(("html",)).get_content()
    assert marketing["List-Unsubscribe"] == "<https://acme.test/unsubscribe/c-42>"


def _key_pair(tmp_path):
    """A fresh 2048-bit RSA key (PEM file) and its public key (DER), made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    path = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return path, public


async def test_dkim_signature_verifies_against_the_public_key(
    templates_dir, ledger, sink, smtp_settings, tmp_path
):
    path, public = _key_pair(tmp_path)
    settings = Settings(dkim_domain="acme.test", dkim_selector="s2026", dkim_key_file=str(path))
    acts = EmailActivities(templates_dir, smtp_settings, ledger, dkim=signer_from(settings))
    await ActivityEnvironment().run(acts.send_email, make_input())
    (got,) = sink.wait_for(1)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        assert name == b"s2026._domainkey.acme.test."
        return record

    assert dkim.verify(got.raw, dnsfunc=dns)
    header = got.message["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
    signed = dict(p.split("=", 1) for p in header.split(";") if "=" in p)
    assert signed["d"] == "acme.test" and signed["s"] == "s2026"
    assert {h.lower() for h in signed["h"].split(":")} >= {
        "from",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
    # A changed header breaks the signature.
    tampered = got.raw.replace(b"Subject: Hello Ann", b"Subject: Hello Bob")
    assert tampered != got.raw and not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_settings_go_together(tmp_path):
    assert signer_from(Settings()) is None
    with pytest.raises(DkimError, match="DKIM needs DKIM_DOMAIN, DKIM_SELECTOR and DKIM_KEY_FILE"):
        signer_from(Settings(dkim_domain="acme.test"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(DkimError, match="DKIM_KEY_FILE cannot sign"):
        DkimSigner("acme.test", "s", bad.read_bytes())


def _smtp(sink):
    from engine.delivery.smtp import SmtpSettings

    return SmtpSettings(host="127.0.0.1", port=sink.port, timeout=5)
