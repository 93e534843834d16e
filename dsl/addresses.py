"""One email address, checked strictly: what the engine sends to and from.

In: an address header value (``ann@x.test`` or ``Ann <ann@x.test>``).
Out: ``address_of`` (the bare ``local@domain``) or ``AddressError`` saying why not.
Used by the compiler (``settings.sender`` and team addresses, at ``validate`` time) and
by delivery (every recipient, at send time). Standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from email import policy

_LINE_SEPARATORS = {"\u2028", "\u2029"}


class AddressError(ValueError):
    """An address (recipient or sender) is empty or not an email address."""


# The addr-spec this engine sends to: a dot-atom local part and domain, no quoting, no
# whitespace, no second address. Anything else is refused, never repaired.
_ATOM = r"[^\s@<>()\[\],;:\"\\.]+"
_ADDR_SPEC = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*")


def address_of(value: str) -> str:
    """The bare ``local@domain`` of ONE address (``ann@x.test`` or ``Ann <ann@x.test>``).

    ``AddressError`` (saying why) for anything else: a control character anywhere (CR/LF
    would smuggle in headers, and removing them would send to a different address), two
    addresses, a group, or a malformed address. The value is checked, never cleaned."""
    if not isinstance(value, str) or not value.strip():
        raise AddressError(f"not an email address: {value!r}")
    for i, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc" or ch in _LINE_SEPARATORS:
            raise AddressError(
                f"not a single email address: {value!r} contains the control character "
                f"U+{ord(ch):04X} at position {i + 1}"
            )
    try:
        header = policy.default.header_factory("To", value)
        addresses, groups, defects = header.addresses, header.groups, header.defects
    except Exception:  # the stdlib parser raises IndexError and others on some inputs
        raise AddressError(f"not an email address: {value!r}") from None
    if len(addresses) > 1 or len(groups) > 1:
        raise AddressError(
            f"not a single email address: {value!r} holds {len(addresses)} addresses"
        )
    if len(addresses) != 1 or groups[0].display_name is not None or defects:
        raise AddressError(f"not an email address: {value!r}")
    addr = addresses[0].addr_spec
    local = addr.rpartition("@")[0]
    if not _ADDR_SPEC.fullmatch(addr) or len(local) > 64 or len(addr) > 254:
        raise AddressError(f"not an email address: {value!r}")
    return addr
