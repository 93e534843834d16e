"""SMTP settings parsing and the sending client against a real aiosmtpd server."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from engine.delivery.smtp import (
    SmtpBounceError,
    SmtpClient,
    SmtpSettings,
    SmtpSettingsError,
    SmtpUnavailableError,
)
from engine.tools.smtp_sink import SmtpSink, free_port
from tests.engine.faulty_smtp import DroppingRelay

RAW = b"From: a@acme.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def test_settings_defaults():
    s = SmtpSettings.from_env({})
    assert (s.host, s.port, s.starttls, s.tls, s.timeout) == ("127.0.0.1", 25, "auto", False, 30.0)
    assert s.client_options()["start_tls"] is None  # STARTTLS when offered
    assert s.client_options()["username"] is None


def test_settings_starttls_defaults_to_submission_port_and_auth():
    s = SmtpSettings.from_env(
        {
            "SMTP_HOST": "mail.acme.test",
            "SMTP_STARTTLS": "true",
            "SMTP_USERNAME": "bot",
            "SMTP_PASSWORD": "s3cret",
            "SMTP_TIMEOUT": "12.5",
        }
    )
    assert (s.host, s.port, s.starttls, s.timeout) == ("mail.acme.test", 587, "true", 12.5)
    opts = s.client_options()
    assert (opts["start_tls"], opts["use_tls"]) == (True, False)
    assert (opts["username"], opts["password"]) == ("bot", "s3cret")
    assert "s3cret" not in repr(s)


def test_settings_implicit_tls():
    s = SmtpSettings.from_env({"SMTP_TLS": "true"})
    assert s.port == 465
    assert (s.client_options()["use_tls"], s.client_options()["start_tls"]) == (True, False)


def test_settings_explicit_port_and_starttls_off():
    s = SmtpSettings.from_env({"SMTP_PORT": "2525", "SMTP_STARTTLS": "false"})
    assert s.port == 2525 and s.client_options()["start_tls"] is False


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SMTP_PORT": "abc"}, "SMTP_PORT must be a number, not 'abc'"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT out of range: 70000"),
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS must be auto, true or false, not 'maybe'"),
        ({"SMTP_TLS": "sure"}, "SMTP_TLS must be true or false, not 'sure'"),
        ({"SMTP_TIMEOUT": "soon"}, "SMTP_TIMEOUT must be seconds, not 'soon'"),
        ({"SMTP_PASSWORD": "x"}, "SMTP_PASSWORD is set but SMTP_USERNAME is not"),
        (
            {"SMTP_TLS": "true", "SMTP_STARTTLS": "true"},
            "SMTP_TLS=true and SMTP_STARTTLS=true exclude each other",
        ),
    ],
)
def test_settings_errors(env, message):
    with pytest.raises(SmtpSettingsError) as err:
        SmtpSettings.from_env(env)
    assert str(err.value) == message


async def test_one_connection_carries_several_messages(sink, smtp_settings):
    client = SmtpClient(smtp_settings)
    try:
        await client.send("a@acme.test", ["b@example.test"], RAW)
        first = client._smtp
        await client.send("a@acme.test", ["c@example.test"], RAW)
        assert client._smtp is first
    finally:
        await client.close()
    msgs = sink.wait_for(2)
    assert [m.rcpt_tos for m in msgs] == [["b@example.test"], ["c@example.test"]]
    assert msgs[0].mail_from == "a@acme.test"
    assert msgs[0].message["Subject"] == "hi"


async def test_reconnects_after_the_server_went_away(sink, smtp_settings):
    client = SmtpClient(smtp_settings)
    try:
        await client.send("a@acme.test", ["b@example.test"], RAW)
        sink.stop()  # drops the open connection
        again = SmtpSink(port=sink.port).start()
        try:
            await client.send("a@acme.test", ["b@example.test"], RAW)
            assert len(again.wait_for(1)) == 1
        finally:
            again.stop()
    finally:
        await client.close()
    assert len(sink.messages) == 1


async def test_5xx_on_rcpt_is_a_bounce():
    with SmtpSink(reject=lambda rcpt: "550 5.1.1 no such user" if "gone" in rcpt else None) as s:
        client = SmtpClient(SmtpSettings(port=s.port, starttls="false", timeout=5))
        try:
            with pytest.raises(SmtpBounceError) as err:
                await client.send("a@acme.test", ["gone@example.test"], RAW)
            assert (err.value.code, err.value.reply) == (550, "5.1.1 no such user")
            # The connection is still usable after the refusal.
            await client.send("a@acme.test", ["ok@example.test"], RAW)
        finally:
            await client.close()
        assert [m.rcpt_tos for m in s.wait_for(1)] == [["ok@example.test"]]


async def test_4xx_on_rcpt_is_unavailable():
    with SmtpSink(reject=lambda rcpt: "451 4.3.0 try later") as s:
        client = SmtpClient(SmtpSettings(port=s.port, starttls="false", timeout=5))
        try:
            with pytest.raises(SmtpUnavailableError, match="451 4.3.0 try later"):
                await client.send("a@acme.test", ["b@example.test"], RAW)
        finally:
            await client.close()
        assert s.messages == []


async def test_nothing_listening_is_unavailable():
    client = SmtpClient(SmtpSettings(port=free_port(), starttls="false", timeout=5))
    with pytest.raises(SmtpUnavailableError, match="cannot connect to 127.0.0.1:"):
        await client.send("a@acme.test", ["b@example.test"], RAW)
    await client.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_the_right_password_sends():
    with SmtpSink(credentials={"bot": "s3cret"}) as s:
        client = SmtpClient(
            SmtpSettings(port=s.port, username="bot", password="s3cret", starttls="false")
        )
        try:
            await client.send("a@acme.test", ["b@example.test"], RAW)
        finally:
            await client.close()
        assert len(s.wait_for(1)) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_a_wrong_password_is_unavailable_not_a_bounce():
    # A configuration problem: retried (and visible) rather than dropping every email.
    with SmtpSink(credentials={"bot": "s3cret"}) as s:
        client = SmtpClient(
            SmtpSettings(port=s.port, username="bot", password="wrong", starttls="false")
        )
        with pytest.raises(SmtpUnavailableError, match="535"):
            await client.send("a@acme.test", ["b@example.test"], RAW)
        await client.close()
        assert s.messages == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_sink(certificate):
    cert, key = certificate
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    with SmtpSink(tls_context=ctx) as s:
        yield s


async def test_starttls_verified_against_the_configured_ca(tls_sink, certificate):
    settings = SmtpSettings.from_env(
        {
            "SMTP_PORT": str(tls_sink.port),
            "SMTP_STARTTLS": "true",
            "SMTP_CA_FILE": str(certificate[0]),
        }
    )
    client = SmtpClient(settings)
    try:
        await client.send("a@acme.test", ["b@example.test"], RAW)
        assert client._smtp.get_transport_info("sslcontext") is not None
    finally:
        await client.close()
    assert len(tls_sink.wait_for(1)) == 1


async def test_starttls_off_against_a_server_that_requires_it_is_unavailable(tls_sink):
    client = SmtpClient(SmtpSettings(port=tls_sink.port, starttls="false", timeout=5))
    with pytest.raises(SmtpUnavailableError, match="530"):
        await client.send("a@acme.test", ["b@example.test"], RAW)
    await client.close()
    assert tls_sink.messages == []


async def test_starttls_with_an_untrusted_certificate_is_unavailable(tls_sink):
    client = SmtpClient(SmtpSettings(port=tls_sink.port, starttls="true", timeout=5))
    with pytest.raises(SmtpUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.send("a@acme.test", ["b@example.test"], RAW)
    await client.close()
    assert tls_sink.messages == []


async def test_a_drop_after_data_is_not_resent_within_one_send():
    # The relay stores the message, then drops the connection without replying: the
    # client cannot know whether it was taken, so it must not send DATA again itself.
    with DroppingRelay(drops=3) as relay:
        client = SmtpClient(SmtpSettings(port=relay.port, starttls="false", timeout=5))
        try:
            with pytest.raises(SmtpUnavailableError, match="after the message was sent"):
                await client.send("a@acme.test", ["b@example.test"], RAW)
            assert relay.data_commands == 1
            # The next send (Temporal's next attempt) uses a fresh connection.
            with pytest.raises(SmtpUnavailableError):
                await client.send("a@acme.test", ["b@example.test"], RAW)
            assert relay.data_commands == 2
        finally:
            await client.close()


async def test_a_connection_found_closed_before_data_is_retried_once():
    # The relay closes the connection when MAIL FROM arrives (an idle connection it has
    # timed out): nothing was transmitted, so one fresh try is safe.
    with DroppingRelay(mail_drops=1) as relay:
        client = SmtpClient(SmtpSettings(port=relay.port, starttls="false", timeout=5))
        try:
            await client.send("a@acme.test", ["b@example.test"], RAW)
        finally:
            await client.close()
        assert (relay.data_commands, relay.connections) == (1, 2)


async def test_before_data_hook_can_stop_the_transaction_before_data():
    class Stop(Exception):
        pass

    async def lost():
        raise Stop("claim lost")

    with DroppingRelay() as relay:
        client = SmtpClient(SmtpSettings(port=relay.port, starttls="false", timeout=5))
        try:
            with pytest.raises(Stop):
                await client.send("a@acme.test", ["b@example.test"], RAW, before_data=lost)
            # The envelope was reset: the connection carries the next message.
            await client.send("a@acme.test", ["c@example.test"], RAW)
        finally:
            await client.close()
        assert relay.data_commands == 1
