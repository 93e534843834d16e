"""The API's keys and the secret that signs unsubscribe links.

In: ``Settings`` (``LIFECYCLE_WRITE_KEYS``, ``LIFECYCLE_ADMIN_KEYS``, ``LIFECYCLE_SECRET``,
``LIFECYCLE_DATA``). Out: ``Keys(write, admin, secret)`` from ``load_keys``.

What is set in the environment is used as is. What is unset is generated once, on first
use, into ``keys.json`` under the data folder (mode 0600) and reused from there on: the
embedded default of CONTRACT.md §5. The worker (which signs links) and ``lifecycle serve``
(which checks them) may start at the same moment, so creating the file is done under a file
lock: both read the same secret.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from engine.runtime.settings import Settings

KEYS_FILE = "keys.json"


@dataclass(frozen=True)
class Keys:
    write: tuple[str, ...]
    admin: tuple[str, ...]
    secret: str
    generated: Path | None = None  # the file the generated ones are in, if any


def load_keys(settings: Settings) -> Keys:
    """The keys: each from the environment when set, else from (or into) ``keys.json``."""
    if settings.write_keys and settings.admin_keys and settings.secret:
        return Keys(settings.write_keys, settings.admin_keys, settings.secret)
    stored = _stored(settings.data_path / KEYS_FILE)
    return Keys(
        write=settings.write_keys or (stored["write_key"],),
        admin=settings.admin_keys or (stored["admin_key"],),
        secret=settings.secret or stored["secret"],
        generated=settings.data_path / KEYS_FILE,
    )


def _stored(path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
            if all(isinstance(data.get(k), str) for k in ("write_key", "admin_key", "secret")):
                return data
        except (OSError, ValueError):
            pass
        data = {
            "write_key": "wk_" + secrets.token_urlsafe(18),
            "admin_key": "ak_" + secrets.token_urlsafe(18),
            "secret": secrets.token_urlsafe(32),
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
        os.replace(tmp, path)
        return data
