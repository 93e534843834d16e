"""SMTP settings and the sending client.

In: ``SMTP_*`` environment variables (``SmtpSettings.from_env``); an envelope and the
message bytes (``SmtpClient.send``).
Out: the server's reply on success; ``SmtpBounceError`` when the server refuses the
recipient or the message for good (5xx on RCPT / DATA); ``SmtpUnavailableError`` for
everything worth retrying (connection refused or lost, timeouts, 4xx, and 5xx on
connect / HELO / STARTTLS / AUTH / MAIL FROM, which are configuration problems that an
operator fixes, not a property of the recipient).

One connection is reused across sends (guarded by a lock). At most one DATA per
``send``: a failure before the message went out (an idle connection the server has
closed, found at connect / EHLO / MAIL FROM / RCPT) is retried once on a fresh
connection; once DATA has begun, a lost connection or a timeout is ambiguous (the relay
may have stored the message and lost only its reply) and raises ``SmtpUnavailableError``
without resending, so the caller's retry (Temporal's, with backoff and the sent-ledger's
claim) decides. ``before_data``, if given, is awaited after RCPT and right before DATA: it
raises to stop the transaction (the envelope is reset), e.g. when the ledger claim that
allows this attempt to send was lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

STARTTLS_MODES = ("auto", "true", "false")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SmtpSettingsError(ValueError):
    """An ``SMTP_*`` variable has a value that cannot be used."""


class SmtpUnavailableError(Exception):
    """Sending failed in a way that may succeed later: retry."""


class _NotYetSent(Exception):
    """The connection failed before DATA: nothing was transmitted, a retry is safe."""


class SmtpBounceError(Exception):
    """The server refused the recipient or the message permanently (5xx)."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: str = "auto"  # auto: use STARTTLS when the server offers it
    tls: bool = False  # implicit TLS from the first byte (usually port 465)
    timeout: float = 30.0
    ca_file: str = ""  # CA bundle to verify the server with (a private CA); "" = system

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        """Settings from ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USERNAME``, ``SMTP_PASSWORD``,
        ``SMTP_STARTTLS`` (auto|true|false), ``SMTP_TLS`` (true|false), ``SMTP_TIMEOUT``,
        ``SMTP_CA_FILE``."""
        env = os.environ if env is None else env
        starttls = env.get("SMTP_STARTTLS", "auto").strip().lower() or "auto"
        if starttls in _TRUE:
            starttls = "true"
        elif starttls in _FALSE - {""}:
            starttls = "false"
        if starttls not in STARTTLS_MODES:
            raise SmtpSettingsError(
                f"SMTP_STARTTLS must be auto, true or false, not {env['SMTP_STARTTLS']!r}"
            )
        tls = _parse_bool(env, "SMTP_TLS")
        if tls and starttls == "true":
            raise SmtpSettingsError("SMTP_TLS=true and SMTP_STARTTLS=true exclude each other")
        port_text = env.get("SMTP_PORT", "").strip()
        if port_text:
            try:
                port = int(port_text)
            except ValueError:
                raise SmtpSettingsError(f"SMTP_PORT must be a number, not {port_text!r}") from None
            if not 0 < port < 65536:
                raise SmtpSettingsError(f"SMTP_PORT out of range: {port}")
        else:
            port = 465 if tls else 587 if starttls == "true" else 25
        timeout_text = env.get("SMTP_TIMEOUT", "").strip()
        try:
            timeout = float(timeout_text) if timeout_text else 30.0
        except ValueError:
            raise SmtpSettingsError(f"SMTP_TIMEOUT must be seconds, not {timeout_text!r}") from None
        if timeout <= 0:
            raise SmtpSettingsError(f"SMTP_TIMEOUT must be positive, not {timeout_text!r}")
        username = env.get("SMTP_USERNAME", "")
        password = env.get("SMTP_PASSWORD", "")
        if password and not username:
            raise SmtpSettingsError("SMTP_PASSWORD is set but SMTP_USERNAME is not")
        return cls(
            host=env.get("SMTP_HOST", "").strip() or "127.0.0.1",
            port=port,
            username=username,
            password=password,
            starttls=starttls,
            tls=tls,
            timeout=timeout,
            ca_file=env.get("SMTP_CA_FILE", "").strip(),
        )

    def client_options(self) -> dict:
        """Keyword arguments for ``aiosmtplib.SMTP``."""
        start_tls = {"auto": None, "true": True, "false": False}[self.starttls]
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username or None,
            "password": self.password or None,
            "use_tls": self.tls,
            "start_tls": False if self.tls else start_tls,
            "timeout": self.timeout,
            "cert_bundle": self.ca_file or None,
        }

    def __repr__(self) -> str:  # never print the password
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"password={'***' if self.password else ''!r}, starttls={self.starttls!r}, "
            f"tls={self.tls}, timeout={self.timeout}, ca_file={self.ca_file!r})"
        )


def _parse_bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SmtpSettingsError(f"{name} must be true or false, not {env[name]!r}")


class SmtpClient:
    """Sends messages over one reused connection."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def send(
        self,
        envelope_from: str,
        recipients: list[str],
        message: bytes,
        before_data: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Send ``message``; return the server's reply to DATA."""
        async with self._lock:
            try:
                try:
                    return await self._send_once(envelope_from, recipients, message, before_data)
                except _NotYetSent:
                    # Nothing was transmitted (typically an idle connection the server has
                    # since closed): one fresh try.
                    await self._drop()
                    return await self._send_once(envelope_from, recipients, message, before_data)
            except _NotYetSent as exc:
                await self._drop()
                raise SmtpUnavailableError(f"server disconnected: {exc.__cause__}") from None
            except asyncio.CancelledError:
                # Cancelled mid-transaction (activity cancelled): the connection is in
                # an unknown state, so close it without talking to the server.
                self._abort()
                raise

    async def _send_once(
        self,
        envelope_from: str,
        recipients: list[str],
        message: bytes,
        before_data: Callable[[], Awaitable[None]] | None,
    ) -> str:
        smtp = await self._connection()
        data_begun = False
        try:
            try:
                # What aiosmtplib's sendmail does first; its MAIL / RCPT / DATA are split
                # here so that nothing after DATA is ever retried.
                await smtp._ehlo_or_helo_if_needed()
                size = len(normalize_message_line_endings(message))  # as sent (RFC 1870)
                options = [f"size={size}"] if smtp.supports_extension("size") else []
                await smtp.mail(envelope_from, options=options)
                for rcpt in recipients:  # raises SMTPRecipientRefused unless 250 / 251
                    await smtp.rcpt(rcpt)
            except aiosmtplib.SMTPServerDisconnected as exc:
                raise _NotYetSent() from exc
            if before_data is not None:
                try:
                    await before_data()
                except Exception:
                    await self._reset()
                    raise
            data_begun = True
            reply = (await smtp.data(message)).message
        except _NotYetSent:
            raise
        except aiosmtplib.SMTPServerDisconnected as exc:
            # Only reached after DATA began: the relay may have the message.
            await self._drop()
            raise SmtpUnavailableError(
                f"server disconnected after the message was sent, before its reply ({exc});"
                " not resent now: a later attempt sends it again with the same Message-ID"
            ) from None
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._reset()
            if exc.code >= 500:
                raise SmtpBounceError(exc.code, exc.message) from None
            raise SmtpUnavailableError(f"recipient deferred: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPDataError as exc:
            if exc.code >= 500:
                await self._reset()
                raise SmtpBounceError(exc.code, exc.message) from None
            await self._drop()
            raise SmtpUnavailableError(f"message deferred: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            raise SmtpUnavailableError(f"{type(exc).__name__}: {exc.code} {exc.message}") from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            when = " after the message was sent" if data_begun else ""
            raise SmtpUnavailableError(f"{type(exc).__name__}{when}: {exc}") from None
        return reply

    async def _reset(self) -> None:
        """End the transaction (RSET) so the connection can carry the next message."""
        smtp = self._smtp
        if smtp is None:
            return
        try:
            await smtp.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        await self._drop()
        smtp = aiosmtplib.SMTP(**self.settings.client_options())
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpUnavailableError(
                f"cannot connect to {self.settings.host}:{self.settings.port}: "
                f"{exc.code} {exc.message}"
            ) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpUnavailableError(
                f"cannot connect to {self.settings.host}:{self.settings.port}: {exc}"
            ) from None
        self._smtp = smtp
        return smtp

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await smtp.quit()
        except Exception:
            smtp.close()

    def _abort(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
