"""Which time zone a customer lives in (CONTRACT.md §6).

In: the customer's profile and the rules' ``settings.timezone`` (an IANA name or None).
Out: ``resolve_zone`` → a ``ZoneInfo``: ``customer.timezone`` when it names a zone, else
the default, else UTC. A name that is not a zone falls back (never raises): a profile is
data, and a typo in it must not fail the customer's workflow.

Zone data comes from the pinned ``tzdata`` package when it is installed (the same rules
on every machine, so a workflow replays the same), else the system's. Standard library
only: it runs inside Temporal's workflow sandbox.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = ZoneInfo("UTC")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


@functools.lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo | None:
    """The zone called ``name`` (an IANA name such as ``Europe/Berlin``), or None.

    Read from the pinned ``tzdata`` package first (``ZoneInfo(name)`` would prefer the
    machine's /usr/share/zoneinfo, whose rules differ between machines and over time),
    so two workers replaying one history compute the same local times."""
    if not isinstance(name, str) or len(name) > 64 or not _NAME.match(name):
        return None
    try:
        data = resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
        if data.is_file():
            with data.open("rb") as f:
                return ZoneInfo.from_file(f, key=name)
    except (ModuleNotFoundError, ValueError, OSError):
        pass
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def resolve_zone(profile: dict, default_name: str | None) -> ZoneInfo:
    """``customer.timezone`` if it is a zone, else ``default_name`` if it is one, else UTC."""
    own = profile.get("timezone") if isinstance(profile, dict) else None
    return zone_named(own) or zone_named(default_name or "") or UTC_ZONE
