"""DKIM signing of outgoing email (RFC 6376), with dkimpy.

In: ``DKIM_DOMAIN``, ``DKIM_SELECTOR`` and ``DKIM_KEY_FILE`` (a PEM RSA private key), as
``engine.runtime.settings.Settings`` reads them. Out: ``DkimSigner.sign(message) ->
message`` with a ``DKIM-Signature`` header in front, covering From, To, Subject, Date,
Message-ID, List-Unsubscribe and List-Unsubscribe-Post (a header the message lacks is
signed as absent, so it cannot be added on the way); ``signer_from(settings)``: a signer,
or None when DKIM is not configured; ``DkimError`` when the key cannot be used.

The public key goes into DNS as ``SELECTOR._domainkey.DOMAIN TXT "v=DKIM1; k=rsa; p=..."``
(docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import dkim

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


class DkimError(ValueError):
    """The DKIM settings or key cannot be used."""


class DkimSigner:
    def __init__(self, domain: str, selector: str, key: bytes) -> None:
        self.domain, self.selector, self.key = domain, selector, key
        # Sign once now: a bad key fails the worker's start, not every send.
        try:
            self.sign(b"From: a@b.test\r\nSubject: x\r\n\r\nx\r\n")
        except Exception as exc:
            raise DkimError(f"DKIM_KEY_FILE cannot sign: {exc}") from None

    def sign(self, message: bytes) -> bytes:
        signature = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.key,
            include_headers=list(SIGNED_HEADERS),
            canonicalize=(b"relaxed", b"simple"),
        )
        return signature + message


def signer_from(settings) -> DkimSigner | None:
    """A signer when ``DKIM_DOMAIN``, ``DKIM_SELECTOR`` and ``DKIM_KEY_FILE`` are all set;
    None when none is; ``DkimError`` when only some are, or the key cannot be read."""
    values = (settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    if not any(values):
        return None
    if not all(values):
        raise DkimError("DKIM needs DKIM_DOMAIN, DKIM_SELECTOR and DKIM_KEY_FILE together")
    try:
        key = Path(settings.dkim_key_file).read_bytes()
    except OSError as exc:
        raise DkimError(f"DKIM_KEY_FILE cannot be read: {exc}") from None
    return DkimSigner(settings.dkim_domain, settings.dkim_selector, key)
