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
import urllib.error
import urllib.request
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


def ensure_api(data: Path, port: int) -> str:
    """The address of a running ``lifecycle serve``, starting one if needed."""
    url = f"http://127.0.0.1:{port}"
    pidfile = data / "api.pid"
    if pidfile.exists() and _alive(int(pidfile.read_text())) and _healthz(url) is not None:
        print(f"API already running (pid {pidfile.read_text().strip()})")
        return url
    log = open(data / "api.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    print(f"starting the API (pid {proc.pid}; log {data / 'api.log'}) ...", flush=True)
    deadline = time.monotonic() + 60
    while _healthz(url) is None:
        if proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            tail = (data / "api.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the API exited ({proc.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the API did not answer in time; see {data / 'api.log'}")
        time.sleep(0.3)
    return url


def _healthz(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def post(url: str, path: str, body: dict, write_key: str) -> tuple[int, dict]:
    """POST JSON with the write key (Bearer); (status, JSON answer)."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {write_key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def send_all(url: str, events: list[dict], write_key: str) -> None:
    """The events through the API, as a shop's backend would send them: one batch, retried
    while the API says 503 (Temporal still starting); event ids make retries safe."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = post(url, "/v1/events", {"batch": events}, write_key)
        if status == 202 or status not in (429, 503) or time.monotonic() > deadline:
            break
        time.sleep(1)
    if status != 202:
        raise SystemExit(f"the API refused the sample events ({status}): {answer}")


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
    from engine.runtime.keys import load_keys
    from engine.runtime.settings import Settings, command_environment, override

    settings = Settings.from_env()
    api_url = f"http://127.0.0.1:{settings.api_port}"
    if not settings.public_url:
        # Links in emails point at the local API, so the unsubscribe link in an email works.
        override("LIFECYCLE_PUBLIC_URL", api_url)
    write_key = load_keys(settings).write[0]
    print("\n== 2. the worker and the HTTP API")
    ensure_worker(data)
    ensure_api(data, settings.api_port)
    outbox = data / "outbox"
    outbox.mkdir(exist_ok=True)
    seen = {p.name for p in outbox.glob("*.eml")}
    run_tag = time.strftime("%H%M%S")
    events = first_events(run_tag)
    print(
        f"\n== 3. send {len(events)} sample events through the API "
        f"(POST {api_url}/v1/events; customers suffixed -{run_tag})"
    )
    for event in events:
        print(f"  {event['type']:<24} {event['customer_id']}")
    send_all(api_url, events, write_key)
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
    ui = settings.web_ui_port
    unsubscribe = next(
        (m["List-Unsubscribe"].strip("<>") for _, m in arrived if m["List-Unsubscribe"]), None
    )
    print(
        f"\nHTTP API:         {api_url}   (write key {write_key}; docs/api.md)\n"
        f"Temporal web UI:  http://127.0.0.1:{ui}\n"
        f"Outbox:           {outbox}\n"
        "Send your own (a Segment-style track; the welcome email lands in the outbox):\n"
        f"  curl -u {write_key}: {api_url}/v1/track -H 'Content-Type: application/json' \\\n"
        '    -d \'{"userId": "me", "event": "customer.signed_up", "context": {"traits": '
        '{"name": "Me", "email": "me@example.test", "marketing_opt_in": true}}}\'\n'
        f"Look at it:       {command_environment()}.venv/bin/lifecycle status me\n"
        f"Why (or why not): {command_environment()}.venv/bin/lifecycle why me\n"
        f"Live figures:     {command_environment(names=('LIFECYCLE_DATA',))}"
        ".venv/bin/lifecycle report --live\n"
        + (
            "One-click unsubscribe, as a mailbox provider does it (the first email's link):\n"
            f"  curl -d List-Unsubscribe=One-Click {unsubscribe}\n"
            if unsubscribe
            else ""
        )
        + "Stop everything:  ./run stop"
    )
    print("\n== 6. the next 30 days of the sample customers, simulated (lifecycle simulate)")
    code = cli_main(["simulate", str(SAMPLES), "--until", "30d"])
    return 0 if arrived and code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
