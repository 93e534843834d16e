"""Names and defaults defined once: task queue, workflow ids, data folder, environment."""

from __future__ import annotations

import os
from pathlib import Path

TASK_QUEUE = "lifecycle"
CUSTOMER_WORKFLOW_PREFIX = "customer-"


# Temporal refuses workflow ids over 1,000 bytes; 256 characters of customer id can be
# 1,024 bytes of UTF-8.
MAX_WORKFLOW_ID_BYTES = 1000


def customer_workflow_id(customer_id: str) -> str:
    """``customer-<id>``; an id too long for Temporal in UTF-8 is hashed instead, under a
    form (``customer:sha256:…``) that no ``customer-…`` id can ever equal."""
    plain = f"{CUSTOMER_WORKFLOW_PREFIX}{customer_id}"
    if len(plain.encode("utf-8")) <= MAX_WORKFLOW_ID_BYTES:
        return plain
    import hashlib

    return "customer:sha256:" + hashlib.sha256(customer_id.encode("utf-8")).hexdigest()


def data_dir() -> Path:
    """Where the embedded defaults keep state: ``LIFECYCLE_DATA`` or ./var."""
    from engine.runtime.settings import setting

    return Path(setting("data_dir")).resolve()


def binary_path(name: str) -> str | None:
    """A console tool of this environment (``temporal``, ``temporal-test-server``).

    Looked up beside the running interpreter first, so ``.venv/bin/python`` finds the
    venv's copies even when the venv is not activated, then on PATH.
    """
    import shutil
    import sys

    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)
