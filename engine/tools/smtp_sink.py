"""A local SMTP server that captures what it receives (for development and tests).

In: where to listen (127.0.0.1, a port or 0 for a free one), optionally an outbox folder,
a ``reject(rcpt) -> reply | None`` hook to refuse recipients, credentials to require
AUTH and an SSL context to offer (and require) STARTTLS.
Out: ``SmtpSink.messages``, the captured messages (envelope, raw bytes, parsed
``EmailMessage``), and, with an outbox, one ``<timestamp>-<n>.eml`` file per message.
aiosmtpd's protocol log (every command, on the ``mail.log`` logger) is shown only when
logging is at DEBUG (``LOG_LEVEL=DEBUG`` for the worker).

    python -m engine.tools.smtp_sink --port 2525 --outbox var/outbox
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class CapturedMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.sink.reject is not None:
            reply = self.sink.reject(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        self.sink._capture(envelope.mail_from, list(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            if self.credentials.get(user) == auth_data.password.decode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def quiet_protocol_log() -> None:
    """Keep aiosmtpd's ``mail.log`` (a line per SMTP command, at INFO) out of the log
    unless the root logger is at DEBUG or the logger was configured on purpose."""
    protocol = logging.getLogger("mail.log")
    if protocol.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
        protocol.setLevel(logging.WARNING)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SmtpSink:
    """Captures mail in memory (and optionally in an outbox folder); thread-safe."""

    def __init__(
        self,
        outbox: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reject: Callable[[str], str | None] | None = None,
        credentials: dict[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.outbox = Path(outbox) if outbox is not None else None
        self.host = host
        self.port = port
        self.reject = reject
        self.credentials = credentials
        self.tls_context = tls_context  # offer STARTTLS, and require it
        self.messages: list[CapturedMessage] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None
        self._count = 0

    def start(self) -> SmtpSink:
        quiet_protocol_log()
        if self.port == 0:
            # aiosmtpd's Controller checks readiness by connecting to the port it was
            # given, so it needs a concrete one.
            self.port = free_port(self.host)
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
        kwargs: dict = {}
        if self.credentials is not None:
            kwargs = {
                "authenticator": _Authenticator(self.credentials),
                "auth_required": True,
                "auth_require_tls": False,  # loopback test server only
            }
        if self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=10, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _capture(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        captured = CapturedMessage(mail_from, rcpt_tos, raw, parsed)  # type: ignore[arg-type]
        with self._cond:
            self._count += 1
            n = self._count
            self.messages.append(captured)
            self._cond.notify_all()
        if self.outbox is not None:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            (self.outbox / f"{stamp}-{n}.eml").write_bytes(raw)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[CapturedMessage]:
        """Block until ``count`` messages have arrived; ``TimeoutError`` otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(self.messages)}")
            return list(self.messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.tools.smtp_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--outbox", type=Path, default=None)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sink = SmtpSink(outbox=args.outbox, host=args.host, port=args.port).start()
    where = f", writing to {args.outbox}" if args.outbox else ""
    print(f"SMTP sink listening on {sink.host}:{sink.port}{where}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()
    print(f"SMTP sink stopped after {len(sink.messages)} messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
