"""What ``./run`` does: the engine's main job on embedded defaults, shown end to end.

In: rules/, templates/, samples/events.jsonl. Out: a background worker (``python
worker.py`` with its embedded Temporal dev server and SMTP sink) left running, the sample
customers' first events sent to it, the emails that arrived in the outbox, where the web
UI is, how to send your own event, and a 30-day simulation of all the samples.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from engine.runtime.config import data_dir
from engine.tools.simulator import parse_offset

SAMPLES = Path("samples/events.jsonl")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def ensure_worker(data: Path) -> int:
    """The pid of a running background worker, starting one if needed."""
    pidfile, ready = data / "worker.pid", data / "worker.ready"
    if pidfile.exists() and _alive(int(pidfile.read_text())) and ready.exists():
        print(f"worker already running (pid {pidfile.read_text().strip()})")
        return int(pidfile.read_text())
    ready.unlink(missing_ok=True)
    log = open(data / "worker.log", "ab")  # noqa: SIM115
    env = dict(os.environ, LIFECYCLE_READY_FILE=str(ready), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "worker.py"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    print(f"starting the worker (pid {proc.pid}; log {data / 'worker.log'}) ...", flush=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            tail = (data / "worker.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the worker exited ({proc.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not get ready in time; see {data / 'worker.log'}")
        time.sleep(0.3)
    return proc.pid


def first_events(run_tag: str) -> list[dict]:
    """Each sample customer's first event, the customer renamed per run so each run is fresh."""
    out = []
    seen = set()
    lines = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]
    lines.sort(key=lambda e: parse_offset(str(e.get("at", "+0s"))) or timedelta(0))
    for event in lines:
        if event["customer_id"] in seen:
            continue
        seen.add(event["customer_id"])
        event["customer_id"] = f"{event['customer_id']}-{run_tag}"
        if "id" in event:
            event["id"] = f"{event['id']}-{run_tag}"
        event.pop("at", None)
        out.append(event)
    return out


def read_outbox(outbox: Path, seen: set[str]) -> list[tuple[Path, object]]:
    new = []
    for path in sorted(outbox.glob("*.eml")):
        if path.name in seen:
            continue
        seen.add(path.name)
        new.append((path, BytesParser(policy=policy.default).parsebytes(path.read_bytes())))
    return new


def email_line(to: str, subject: str, width: int | None = None) -> str:
    """One email of the summary: the recipient in a 32-column field, then the subject, both
    cut to fit the terminal (``width``, default its width) so long ones keep the columns;
    a folded header's line break is read as the space it stands for."""
    import shutil

    width = width or shutil.get_terminal_size((100, 24)).columns
    room = max(20, width - 2 - 32 - 1)
    return f"  {_fit(' '.join(to.split()), 32):<32} {_fit(' '.join(subject.split()), room)}"


def _fit(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


async def send_all(events: list[dict]) -> list[str]:
    from engine.runtime.client import connect, parse_event, send_event

    client = await connect()  # TEMPORAL_ADDRESS, else the embedded server's port
    ids = []
    for event in events:
        ids.append(await send_event(client, parse_event(event)))
    return ids


async def show_status(customer_id: str) -> None:
    from engine.cli.status import format_status
    from engine.runtime.client import connect, get_status

    client = await connect()  # TEMPORAL_ADDRESS, else the embedded server's port
    print(format_status(await get_status(client, customer_id), history=5))


def main(argv: list[str] | None = None) -> int:
    from engine.cli import main as cli_main

    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    print("== 1. validate the rules and templates")
    if cli_main(["validate"]) != 0:
        return 1
    print("\n== 2. the worker")
    ensure_worker(data)
    outbox = data / "outbox"
    outbox.mkdir(exist_ok=True)
    seen = {p.name for p in outbox.glob("*.eml")}
    run_tag = time.strftime("%H%M%S")
    events = first_events(run_tag)
    print(f"\n== 3. send {len(events)} sample events (customers suffixed -{run_tag})")
    for event in events:
        print(f"  {event['type']:<24} {event['customer_id']}")
    asyncio.run(send_all(events))
    print("\n== 4. emails delivered to the SMTP sink")
    arrived: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        arrived += read_outbox(outbox, seen)
        if arrived and time.monotonic() > deadline - 55:
            time.sleep(1.5)  # let the rest of this burst land
            arrived += read_outbox(outbox, seen)
            break
        time.sleep(0.3)
    for path, msg in arrived:
        print(f"{email_line(str(msg['To']), str(msg['Subject']))}\n      {path}")
    if not arrived:
        print("  none arrived within 60 s; see var/worker.log")
    if events:
        print("\n== 5. a customer's state")
        asyncio.run(show_status(events[0]["customer_id"]))
    from engine.runtime.settings import Settings

    ui = Settings.from_env().web_ui_port
    print(
        f"\nTemporal web UI:  http://127.0.0.1:{ui}\n"
        f"Outbox:           {outbox}\n"
        "Send your own:    .venv/bin/lifecycle send-event "
        '\'{"type": "customer.signed_up", "customer_id": "me", '
        '"customer": {"name": "Me", "email": "me@example.test", '
        '"marketing_opt_in": true}}\'\n'
        "Look at it:       .venv/bin/lifecycle status me\n"
        "Stop the worker:  ./run stop"
    )
    print("\n== 6. the next 30 days of the sample customers, simulated (lifecycle simulate)")
    code = cli_main(["simulate", str(SAMPLES), "--until", "30d"])
    return 0 if arrived and code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
