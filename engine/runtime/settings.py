"""Environment settings read by the runtime, with their defaults."""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default
