"""Record workflow histories for the replay test:
``python -m tests.workflows.record_histories LABEL`` (LABEL names the interpreter version,
e.g. the newest ``workflow.patched`` id).

Runs the shipped rules over the sample events on the time-skipping server and saves each
customer's history to tests/workflows/histories/. Commit new files when the interpreter
changes; never overwrite old ones, since replaying them is what proves a change is safe
for journeys already in flight.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.simulator import read_events, simulate

OUT = Path(__file__).parent / "histories"


async def main(label: str) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    events = read_events("samples/events.jsonl", start)
    result = await simulate(
        events, "rules", "templates", start, timedelta(days=40), keep_histories=True
    )
    OUT.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    for wf_id, history in result.histories.items():
        path = OUT / f"{stamp}-{label}-{wf_id}.json"
        if not path.exists():
            path.write_text(json.dumps(history))
            print(f"saved {path}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "current"))
