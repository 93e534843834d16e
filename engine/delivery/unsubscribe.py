"""Signed unsubscribe links.

In: the secret (``LIFECYCLE_SECRET``), a customer id, and where links point (the API's
public address, a shop's own page). Out: ``make_token`` / ``read_token`` (the opaque token
in ``/u/{token}``) and ``Links.for_customer`` (the link templates show and the one the
``List-Unsubscribe`` header carries).

A token is ``base64url(customer id) "." base64url(HMAC-SHA256(secret, "unsubscribe:v1:" id))``
truncated to 128 bits. It carries the customer id, so the API needs no lookup, and never
expires (CONTRACT.md §5: a link in a two-year-old email still works). Changing one
character, or making one up, fails the check in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

_CONTEXT = b"unsubscribe:v1:"
_SIG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, customer_id: str) -> bytes:
    mac = hmac.new(secret.encode(), _CONTEXT + customer_id.encode("utf-8"), hashlib.sha256)
    return mac.digest()[:_SIG_BYTES]


def make_token(secret: str, customer_id: str) -> str:
    return f"{_b64(customer_id.encode('utf-8'))}.{_b64(_signature(secret, customer_id))}"


def read_token(secret: str, token: str) -> str | None:
    """The customer id a token was made for, or None when it is not one of ours."""
    if len(token) > 1024 or token.count(".") != 1:
        return None
    payload, sig = token.split(".")
    try:
        customer_id = _unb64(payload).decode("utf-8")
        given = _unb64(sig)
    except (binascii.Error, ValueError):
        return None
    if not customer_id or _b64(customer_id.encode("utf-8")) != payload or _b64(given) != sig:
        # Only the canonical encoding: base64's last character has spare bits, and a token
        # with them changed must not pass (one token per customer, no variants).
        return None
    if not hmac.compare_digest(given, _signature(secret, customer_id)):
        return None
    return customer_id


@dataclass(frozen=True)
class Links:
    """How the email activity makes a customer's unsubscribe links.

    ``public_url``: the deployment's default address of ``lifecycle serve``
    (``LIFECYCLE_PUBLIC_URL``), used when the rules do not set ``settings.public_url``."""

    secret: str
    public_url: str = ""

    def for_customer(
        self, customer_id: str, public_url: str = "", own_page: str = ""
    ) -> tuple[str, str]:
        """(the link templates see as ``unsubscribe_url``, the ``List-Unsubscribe`` link).

        With a public address, the header carries ``{public_url}/u/{token}`` (RFC 8058
        one-click needs our POST endpoint); templates see the shop's own page when the rules
        set ``settings.unsubscribe_url`` (``{token}`` / ``{customer_id}`` filled in), else the
        same link. Without a public address the shop's page is used for both, as before."""
        token = make_token(self.secret, customer_id)
        base = (public_url or self.public_url).rstrip("/")
        ours = f"{base}/u/{token}" if base else ""
        page = own_page.replace("{token}", token).replace("{customer_id}", quote(customer_id, ""))
        return (page or ours), (ours or page)
