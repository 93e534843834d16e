"""The lifecycle worker: ``python worker.py``.

With no configuration it starts an embedded Temporal dev server (persistent, web UI on
http://127.0.0.1:8233) and a local SMTP sink (emails land in var/outbox as .eml files).
With TEMPORAL_ADDRESS (+ TEMPORAL_NAMESPACE, TEMPORAL_API_KEY or TEMPORAL_TLS_CERT/KEY)
and SMTP_HOST (+ SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_STARTTLS) it uses those.
See docs/operations.md.
"""

import asyncio

from engine.runtime.worker import run_worker

if __name__ == "__main__":
    asyncio.run(run_worker())
