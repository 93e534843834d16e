"""Benchmark: what scheduled triggers cost (issue 11, "Performance").

In: nothing (the bench starts a headless ``temporal server start-dev`` on free loopback
ports, in memory, and an in-process SMTP sink).
Out: one table on stdout, both sides measured in the same run. N customers (``--customers``,
default 10,000) each get one event with a profile (name, email, a birthday 200 days
away) and then wait:

- **none**: rules whose only journey is started by an event none of them gets: each
  customer's entity waits for events with nothing scheduled;
- **triggers**: the same, plus ``no order.placed for 60 days`` and ``every year on
  customer.birthday`` journeys: each customer holds one durable timer (the earliest of
  its two due triggers), none firing during the bench.

For each side: the worker's VmRSS (a child process, read from /proc before and after,
as in bench_runtime.py part c) and the dev server's VmRSS and CPU seconds while the
customers are started and settle, each per customer; and history events per customer
(``describe()`` on a sample of 50). The difference between the sides is what scheduling
the two triggers costs.

Run: ``.venv/bin/python bench/bench_triggers.py`` (about 6 minutes on 2 cores;
``--customers 500`` about 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_runtime import cpu_seconds, dev_server, rss_mb  # noqa: E402

from dsl.compiler import compile_text  # noqa: E402
from engine.delivery.render_pool import shared_pool  # noqa: E402
from engine.delivery.smtp import SmtpSettings  # noqa: E402
from engine.runtime.assembly import assemble  # noqa: E402
from engine.runtime.client import connect, get_status, send_event  # noqa: E402
from engine.runtime.config import customer_workflow_id  # noqa: E402
from engine.runtime.plans import PlanStore  # noqa: E402
from engine.runtime.registry import catalogue, load_registry  # noqa: E402
from engine.tools.smtp_sink import SmtpSink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
BASE = """
journeys:
  never-started:
    trigger: bench.never
    steps:
      - send welcome
"""
RULES = {
    "none": BASE,
    "triggers": BASE
    + """
  quiet:
    trigger: no order.placed for 60 days
    steps:
      - send winback-lapsed
  birthday:
    trigger: every year on customer.birthday at 09:00
    reentry: always
    steps:
      - send birthday
""",
}


def store_for(side: str) -> PlanStore:
    result = compile_text(
        RULES[side], "bench.yaml", TEMPLATES, catalogue(load_registry()), shared_pool()
    )
    if result.problems:
        raise SystemExit("\n".join(str(p) for p in result.problems))
    return PlanStore.from_plan(result.plan)


def worker_child(args: argparse.Namespace) -> None:
    """The worker process: runs until its stdin closes."""

    async def main() -> None:
        client = await connect(args.address)
        work = Path(tempfile.mkdtemp(prefix="bench-trg-"))
        smtp = SmtpSettings(host="127.0.0.1", port=args.smtp)
        async with assemble(
            client,
            store_for(args.worker_child),
            smtp,
            work / "ledger.sqlite",
            args.queue,
            templates_dir=TEMPLATES,
        ):
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(main())


async def run_side(client, server, side: str, n: int, smtp_port: int) -> dict:
    tag = uuid.uuid4().hex[:6]
    queue = f"bench-trg-{side}-{tag}"
    cmd = [sys.executable, __file__, "--worker-child", side, "--address", server.address]
    cmd += ["--queue", queue, "--smtp", str(smtp_port)]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    birthday = (datetime.now(UTC) + timedelta(days=200)).strftime("%m-%d")
    try:
        assert child.stdout is not None
        await asyncio.to_thread(child.stdout.readline)  # "ready"
        await asyncio.sleep(2.0)
        before, server_before = rss_mb(child.pid), rss_mb(server.process.pid)
        server_cpu = cpu_seconds(server.process.pid)
        cids = [f"t{tag}-{i}" for i in range(n)]
        limit = asyncio.Semaphore(64)

        async def start(cid: str) -> None:
            event = {"id": f"{cid}-1", "type": "page.viewed", "customer_id": cid, "data": {}}
            event["customer"] = {"name": cid, "email": f"{cid}@example.test"}
            event["customer"]["birthday"] = birthday
            async with limit:
                await send_event(client, event, task_queue=queue)

        t0 = time.perf_counter()
        await asyncio.gather(*(start(c) for c in cids))
        idle, last = 0, cpu_seconds(child.pid)
        while idle < 2:  # settled: the worker idle for 2 s in a row
            await asyncio.sleep(1.0)
            now = cpu_seconds(child.pid)
            idle = idle + 1 if now - last < 0.03 else 0
            last = now
        settled = time.perf_counter() - t0 - 2.0
        after, server_after = rss_mb(child.pid), rss_mb(server.process.pid)
        server_cpu = cpu_seconds(server.process.pid) - server_cpu
        sample = random.sample(cids, min(50, n))
        lengths, scheduled = [], 0
        for cid in sample:
            handle = client.get_workflow_handle(customer_workflow_id(cid))
            desc = await handle.describe()
            lengths.append(desc.raw_description.workflow_execution_info.history_length)
        for cid in sample[:10]:  # after the readings: queries may replay
            scheduled += len((await get_status(client, cid)).get("scheduled", []))
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return {
        "kb_worker": (after - before) * 1024 / n,
        "kb_server": (server_after - server_before) * 1024 / n,
        "ms_server_cpu": server_cpu * 1000 / n,
        "history": sum(lengths) / len(lengths),
        "scheduled": scheduled / min(10, n),
        "settled": settled,
    }


async def main_async(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-trg-"))
    server = dev_server(work, sqlite=False)
    sink = SmtpSink().start()
    try:
        client = await connect(server.address)
        results = {}
        for side in ("none", "triggers"):
            results[side] = await run_side(client, server, side, args.customers, sink.port)
        print(f"{args.customers:,} customers per side, one event each, nothing firing")
        print(
            f"{'side':<10}{'KB/cust worker':>15}{'KB/cust server':>15}{'server CPU ms/cust':>19}"
            f"{'history ev/cust':>16}{'scheduled/cust':>15}{'settled s':>10}"
        )
        for side, r in results.items():
            print(
                f"{side:<10}{r['kb_worker']:>15.1f}{r['kb_server']:>15.1f}"
                f"{r['ms_server_cpu']:>19.2f}{r['history']:>16.1f}{r['scheduled']:>15.1f}"
                f"{r['settled']:>10.1f}"
            )
        a, b = results["none"], results["triggers"]
        print(
            f"triggers - none: {b['kb_worker'] - a['kb_worker']:+.1f} KB/customer in the worker, "
            f"{b['kb_server'] - a['kb_server']:+.1f} KB/customer in the server, "
            f"{b['history'] - a['history']:+.1f} history events/customer"
        )
        if len(sink.messages):
            raise SystemExit(f"{len(sink.messages)} emails were sent; none should fire")
    finally:
        sink.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--worker-child", choices=sorted(RULES), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--smtp", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_child:
        worker_child(args)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
