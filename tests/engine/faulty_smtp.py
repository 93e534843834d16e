"""A fault-injecting SMTP relay on loopback (aiosmtpd): it stores each message it receives
and, for the first ``drops`` messages, closes the connection instead of replying to DATA,
which is what a relay that crashes (or a NAT that times out) after storing looks like to
the client. It counts what it stored, so tests count deliveries at the server."""

from __future__ import annotations

import asyncio
import threading
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from engine.tools.smtp_sink import free_port


class DroppingRelay:
    def __init__(
        self, drops: int = 0, rcpt_delay: float = 0.0, data_delay: float = 0.0, mail_drops: int = 0
    ) -> None:
        self.drops = drops
        self.mail_drops = mail_drops  # connections closed at MAIL FROM, before any message
        self.rcpt_delay = rcpt_delay  # seconds to wait before answering RCPT
        self.data_delay = data_delay  # seconds between storing a message and replying
        self.stored: list = []  # parsed messages, in arrival order
        self.data_commands = 0  # DATA transactions that reached the end of the message
        self.connections = 0
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller: Controller | None = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        with self._lock:
            drop = self.mail_drops > 0
            if drop:
                self.mail_drops -= 1
        if drop:  # like an idle connection the server timed out: found closed at MAIL
            server.transport.abort()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content
        with self._lock:
            self.data_commands += 1
            self.stored.append(BytesParser(policy=policy.default).parsebytes(raw))
            drop = self.drops > 0
            if drop:
                self.drops -= 1
        if drop:
            # Stored, but the client never hears about it.
            server.transport.abort()
        elif self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 Message accepted for delivery"

    def start(self) -> DroppingRelay:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> DroppingRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
