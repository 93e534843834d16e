"""Events accepted per second through the HTTP API vs signal-with-start from Python.

    .venv/bin/python bench/bench_api.py            # 3,000 events per phase, ~2 min
    .venv/bin/python bench/bench_api.py --quick    # 300 events per phase

Each phase gets a fresh in-memory Temporal dev server (``temporal server start-dev``,
headless, loopback: a server holding thousands of workflows that wait for a worker slows
down, so a shared one would penalise whichever phase runs later), and the API phases run
``lifecycle serve`` as its own process (uvicorn, one worker process) in front of it. No
engine worker runs: this measures intake, what "accepted" costs (the event is durable in
Temporal when the answer comes), not processing, which is bench_runtime.py's business.

Phases, each with fresh customer ids (3 events per customer) and 32 requests in flight:

- **direct**: the baseline a good engineer would write without the API: the Temporal
  client's signal-with-start (``client.start_workflow(..., start_signal="event")``) called
  from Python, 32 at a time on one connection (the SDK multiplexes); run first and last,
  and the ratios use the mean of the two, so drift on a noisy machine shows.
- **direct, 256 in flight**: the same with 256 at a time; the baseline is the better of
  the two (a batch request fans out inside the API, so it has more in flight than 32).
- **api batch**: ``POST /v1/events`` with ``{"batch": [100 events]}``, 32 connections
  (httpx), each request acknowledged only once Temporal accepted all 100.
- **api single**: ``POST /v1/events`` with one event, 32 connections.

Printed: events/s per phase, latency p50/p99 per request, and the ratios api/direct
(target for batches ≥ 0.8×).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.runtime.client import connect  # noqa: E402
from engine.runtime.config import TASK_QUEUE, customer_workflow_id  # noqa: E402
from engine.runtime.servers import EmbeddedTemporal  # noqa: E402
from engine.tools.smtp_sink import free_port  # noqa: E402

WRITE_KEY = "wk_bench_api_000001"
CONCURRENCY = 32
BATCH = 100


def events(count: int, tag: str) -> list[dict]:
    out = []
    for i in range(count):
        cid = f"b-{tag}-{i // 3}"
        out.append(
            {
                "id": f"{tag}-{i}",
                "type": "order.placed" if i % 3 else "customer.signed_up",
                "customer_id": cid,
                "customer": {"email": f"{cid}@bench.test"},
                "data": {"total": 10 + i % 50},
            }
        )
    return out


async def direct(
    client, evs: list[dict], concurrency: int = CONCURRENCY
) -> tuple[float, list[float]]:
    from workflows.customer import CustomerWorkflow
    from workflows.state import CustomerInput

    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(event: dict) -> None:
        async with gate:
            t0 = time.perf_counter()
            await client.start_workflow(
                CustomerWorkflow.run,
                CustomerInput(customer_id=event["customer_id"]),
                id=customer_workflow_id(event["customer_id"]),
                task_queue=TASK_QUEUE,
                start_signal="event",
                start_signal_args=[event],
            )
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(e) for e in evs))
    return len(evs) / (time.perf_counter() - t0), latencies


async def through_api(url: str, evs: list[dict], batch: int) -> tuple[float, list[float]]:
    bodies = (
        [{"batch": evs[i : i + batch]} for i in range(0, len(evs), batch)]
        if batch > 1
        else list(evs)
    )
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        queue = list(reversed(bodies))

        async def lane() -> None:
            while queue:
                body = queue.pop()
                while True:
                    t0 = time.perf_counter()
                    r = await http.post("/v1/events", json=body, headers=headers)
                    if r.status_code == 202:
                        latencies.append(time.perf_counter() - t0)
                        break
                    if r.status_code not in (429, 503):
                        raise SystemExit(f"API answered {r.status_code}: {r.text[:300]}")
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        return len(evs) / (time.perf_counter() - t0), latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_api(temporal: str, data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "TEMPORAL_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal,
        LIFECYCLE_WRITE_KEYS=WRITE_KEY,
        LIFECYCLE_ADMIN_KEYS="ak_bench_api_000001",
        LIFECYCLE_SECRET="bench-secret-0123456789",
        LIFECYCLE_DATA=str(data),
        LIFECYCLE_API_MAX_IN_FLIGHT="256",
    )
    log = open(data / "api.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json()["ok"]:
                return proc, url
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            raise SystemExit((data / "api.log").read_text())
        time.sleep(0.2)
    raise SystemExit("the API did not get ready")


async def phase(name: str, count: int, data: Path) -> tuple[float, list[float]]:
    """One phase on its own fresh in-memory server (a server with thousands of workflows
    waiting for a worker is slower than a fresh one: phases run later would lose)."""
    server = EmbeddedTemporal(
        data / f"temporal-{uuid.uuid4().hex[:6]}",
        port=free_port(),
        ui_port=free_port(),
        headless=True,
        persist=False,
    ).start()
    proc = None
    tag = uuid.uuid4().hex[:6]
    try:
        if name.startswith("direct"):
            client = await connect(server.address)
            inflight = 256 if "256" in name else CONCURRENCY
            await direct(client, events(300, f"warm-{tag}"), inflight)
            return await direct(client, events(count, tag), inflight)
        proc, url = start_api(server.address, data)
        batch = BATCH if "batch" in name else 1
        await through_api(url, events(300, f"warm-{tag}"), batch)
        return await through_api(url, events(count, tag), batch)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        server.stop()


async def main_async(count: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        results: dict[str, tuple[float, list[float]]] = {}
        for name in (
            "direct (first)",
            "api batch of 100",
            "direct, 256 in flight",
            "api single",
            "direct (last)",
        ):
            results[name] = await phase(name, count, data)
        # The baseline: the better of 32 and 256 signal-with-starts in flight (a batch of
        # 100 behind 32 connections has up to 32 x 32 in flight inside the API).
        base = max(
            statistics.mean([results["direct (first)"][0], results["direct (last)"][0]]),
            results["direct, 256 in flight"][0],
        )
        print(f"{count:,} events per phase, {CONCURRENCY} in flight, no worker (intake only)")
        print(f"{'phase':<22} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8}  (latency per request)")
        for name, (rate, lat) in results.items():
            print(f"{name:<22} {rate:>9.0f} {pct(lat, 0.5):>8.1f} {pct(lat, 0.99):>8.1f}")
        print(f"baseline (best direct): {base:.0f} events/s")
        for name in ("api batch of 100", "api single"):
            print(f"ratio {name}/direct: {results[name][0] / base:.2f}x")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="300 events per phase")
    args = parser.parse_args()
    asyncio.run(main_async(300 if args.quick else args.events))


if __name__ == "__main__":
    main()
