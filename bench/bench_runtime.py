"""Benchmark: the runtime on a real Temporal dev server (issues #3 and #4, "Performance").

In: nothing (the bench starts a headless ``temporal server start-dev`` on free loopback
ports, in memory unless ``--sqlite``, and an in-process SMTP sink).
Out: three tables on stdout, absolute numbers and ratios measured in the same run:

a. journeys: N customers each get a trigger event for "send -> wait 1 second -> wait for
   order.placed within 1 minute (the bench sends it) -> send"; wall time from the first
   event to the last journey ended -> journeys/s and events/s, for the engine
   (``CustomerWorkflow`` over a compiled plan, ``build_worker``) and for a hand-written
   workflow (``bench/handwritten.py``) with the same email activity and worker settings
   (same sandbox runner, pollers, activity executor). Ratio engine / hand-written.
b. events: N customers x K events that trigger nothing; the rate ``send_event``
   (signal-with-start) calls are accepted, and the rate the entities process them (until
   every ``events_processed`` reaches K); against a hand-written entity that only counts.
c. memory: ``--waiting`` journeys (default 10,000) that each ``wait 30 days``; the worker
   runs in a child process and its VmRSS is read from /proc before and after; MB total,
   KB per waiting journey, and the workflow cache size used (the SDK's
   ``max_cached_workflows``, 1000 unless ``--cache``).

Run: ``.venv/bin/python bench/bench_runtime.py`` (about 6 minutes, most of it part c;
``--quick`` about 1.5 minutes; ``--only journeys|events|memory``). The machine is shared
and noisy: every figure is the median of ``--repeat`` runs (sides alternate A B B A),
and only ratios from one run should be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The sandbox imports the workflow module again for every new workflow instance; without
# bytecode caches (PYTHONDONTWRITEBYTECODE is set on these machines) that is a compile
# from source each time, ~7 % of either side's CPU. A deployed worker has its caches.
sys.dont_write_bytecode = False

from temporalio.worker import Worker  # noqa: E402

from bench import handwritten  # noqa: E402
from bench.hand_workflows import entity, journey  # noqa: E402
from bench.hand_workflows import waiting as parked  # noqa: E402
from dsl.compiler import compile_text  # noqa: E402
from engine.delivery.email_activity import EmailActivities  # noqa: E402
from engine.delivery.ledger import open_ledger  # noqa: E402
from engine.delivery.render_pool import shared_pool  # noqa: E402
from engine.delivery.smtp import SmtpSettings  # noqa: E402
from engine.runtime.assembly import assemble  # noqa: E402
from engine.runtime.client import (  # noqa: E402
    connect,  # noqa: E402
    get_status,
    send_event,
)
from engine.runtime.config import customer_workflow_id  # noqa: E402
from engine.runtime.plans import PlanStore  # noqa: E402
from engine.runtime.registry import catalogue, load_registry  # noqa: E402
from engine.runtime.servers import EmbeddedTemporal  # noqa: E402
from engine.runtime.settings import Settings  # noqa: E402
from engine.runtime.worker import build_worker, workflow_runner  # noqa: E402
from engine.tools.smtp_sink import SmtpSink, free_port  # noqa: E402

TEMPLATES = ROOT / "templates"
BENCH_RULES = """\
settings:
  sender: "Acme Shop <hello@acme.test>"
  unsubscribe_url: "https://acme.test/unsubscribe/{customer_id}"
journeys:
  bench-journey:
    trigger: bench.started
    steps:
      - send welcome
      - wait 1 second
      - wait for order.placed within 1 minute
      - send welcome
  bench-waiting:
    trigger: bench.parked
    steps:
      - wait 30 days
"""
SDK_DEFAULT_CACHE = 1000  # temporalio.worker.Worker(max_cached_workflows=...) default


def bench_store() -> PlanStore:
    # What the worker compiles with: the registry's catalogue and the render pool.
    activities = catalogue(load_registry())
    result = compile_text(BENCH_RULES, "bench.yaml", TEMPLATES, activities, shared_pool())
    if result.problems:
        raise SystemExit("\n".join(str(p) for p in result.problems))
    return PlanStore.from_plan(result.plan)


def profile(cid: str) -> dict:
    return {"name": cid, "email": f"{cid}@example.test", "marketing_opt_in": True}


def handwritten_worker(client, email, queue: str, workflows: list, **extra) -> Worker:
    """The same worker settings as ``engine.runtime.worker.build_worker`` (sandbox runner,
    pollers, activity threads, cache), the hand-written workflows and ``email`` (a
    ``handwritten.HandEmail``)."""
    extra.setdefault("max_cached_workflows", SDK_DEFAULT_CACHE)
    return Worker(
        client,
        task_queue=queue,
        workflows=workflows,
        activities=[email.send_email],
        activity_executor=ThreadPoolExecutor(max_workers=4),
        workflow_runner=workflow_runner(),
        max_concurrent_workflow_task_polls=8,
        max_concurrent_activity_task_polls=8,
        **extra,
    )


# ---------------------------------------------------------------------- servers


def dev_server(work: Path, sqlite: bool) -> EmbeddedTemporal:
    """``temporal server start-dev`` headless on loopback, in memory unless ``sqlite``."""
    server = EmbeddedTemporal(work / "temporal", port=free_port(), ui_port=free_port())
    server.headless, server.persist = True, sqlite
    return server.start()


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SinkWatcher:
    """Per-recipient email counts from an ``SmtpSink``, awaitable from asyncio."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.seen = 0
        self.counts: dict[str, int] = {}
        self.waiters: dict[tuple[str, int], asyncio.Future] = {}
        self.task: asyncio.Task | None = None

    async def _poll(self) -> None:
        while True:
            messages = self.sink.messages
            while self.seen < len(messages):
                rcpt = messages[self.seen].rcpt_tos[0]
                self.seen += 1
                n = self.counts[rcpt] = self.counts.get(rcpt, 0) + 1
                fut = self.waiters.pop((rcpt, n), None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            await asyncio.sleep(0.01)

    def start(self) -> SinkWatcher:
        self.task = asyncio.create_task(self._poll())
        return self

    async def wait(self, rcpt: str, n: int) -> None:
        if self.counts.get(rcpt, 0) >= n:
            return
        fut = self.waiters.setdefault((rcpt, n), asyncio.get_running_loop().create_future())
        await fut


# ---------------------------------------------------------------------- a. journeys


async def run_journeys(client, side: str, n: int, ctx: dict) -> dict:
    tag = uuid.uuid4().hex[:6]
    queue = f"bench-{side}-{tag}"
    watcher: SinkWatcher = ctx["watcher"]
    if side == "engine":
        settings = ctx.get("settings")  # bench_measure: the record on or off
        worker = build_worker(
            client, ctx["store"], ctx["email"], task_queue=queue, settings=settings
        )
    else:
        email = ctx["hand_email"][side]
        worker = handwritten_worker(client, email, queue, [journey.JourneyWorkflow])

    async def one(i: int) -> float:
        cid = f"j{tag}-{i}"
        rcpt = f"{cid}@example.test"
        trigger = {"id": f"{cid}-1", "type": "bench.started", "customer_id": cid}
        trigger.update(customer=profile(cid), data={"source": "bench"})
        order = {"id": f"{cid}-2", "type": "order.placed", "customer_id": cid}
        order.update(customer={"orders_count": 1}, data={"order_id": f"o-{cid}"})
        if side == "engine":
            await send_event(client, trigger, task_queue=queue)
            handle = client.get_workflow_handle(customer_workflow_id(cid))
        else:
            handle = await client.start_workflow(
                journey.JourneyWorkflow.run,
                cid,
                id=f"hand-{cid}",
                task_queue=queue,
                start_signal="event",
                start_signal_args=[trigger],
            )
        # The order counts only once the journey waits for it: after the first email and
        # the 1 s timer, ask the workflow (queries are cheap next to 200 pollers).
        await watcher.wait(rcpt, 1)
        await asyncio.sleep(1.0)
        while not await _waits_for_event(handle, side):
            await asyncio.sleep(0.2)
        if side == "engine":
            await send_event(client, order, task_queue=queue)
        else:
            await handle.signal("event", order)
        await watcher.wait(rcpt, 2)
        if side == "engine":
            while (await handle.query("status"))["active"]:
                await asyncio.sleep(0.05)
        else:
            await handle.result()
        return time.perf_counter()

    async with worker:
        t0 = time.perf_counter()
        ends = await asyncio.gather(*(one(i) for i in range(n)))
        wall = max(ends) - t0
    return {"wall": wall, "journeys_s": n / wall, "events_s": 2 * n / wall}


async def _waits_for_event(handle, side: str) -> bool:
    if side != "engine":
        return await handle.query("waiting")
    status = await handle.query("status")
    return any(a.get("waiting", {}).get("kind") == "event" for a in status["active"])


# ---------------------------------------------------------------------- b. events


async def run_events(client, side: str, n: int, k: int, ctx: dict) -> dict:
    tag = uuid.uuid4().hex[:6]
    queue = f"bench-{side}-{tag}"
    if side == "engine":
        settings = ctx.get("settings")  # bench_measure: the record on or off
        worker = build_worker(
            client, ctx["store"], ctx["email"], task_queue=queue, settings=settings
        )
    else:
        email = ctx["hand_email"]["hand"]
        worker = handwritten_worker(client, email, queue, [entity.EntityWorkflow])
    cids = [f"e{tag}-{i}" for i in range(n)]
    limit = asyncio.Semaphore(64)

    async def send(cid: str, j: int) -> None:
        event = {"id": f"{cid}-{j}", "type": "page.viewed", "customer_id": cid}
        event.update(customer={}, data={"page": f"/p/{j}"})
        async with limit:
            if side == "engine":
                await send_event(client, event, task_queue=queue)
            else:
                await client.start_workflow(
                    entity.EntityWorkflow.run,
                    cid,
                    id=f"hand-{cid}",
                    task_queue=queue,
                    start_signal="event",
                    start_signal_args=[event],
                )

    async def processed(cid: str) -> int:
        async with limit:
            if side == "engine":
                return (await get_status(client, cid))["events_processed"]
            return await client.get_workflow_handle(f"hand-{cid}").query("events_processed")

    async with worker:
        t0 = time.perf_counter()
        # Round-robin over customers, as events from many customers interleave.
        await asyncio.gather(*(send(cid, j) for j in range(k) for cid in cids))
        accepted = time.perf_counter() - t0
        pending = list(cids)
        while pending:
            counts = await asyncio.gather(*(processed(c) for c in pending))
            pending = [c for c, got in zip(pending, counts, strict=True) if got < k]
            if pending:
                await asyncio.sleep(0.2)
        done = time.perf_counter() - t0
    total = n * k
    return {"accepted_s": total / accepted, "processed_s": total / done, "wall": done}


# ---------------------------------------------------------------------- c. memory


def pass_through(modules: list[str]) -> None:
    """Experiment (``--pass-through``): the engine's sandbox also passes these modules
    through (shared across workflow runs instead of re-imported for each new one)."""
    if not modules:
        return
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    import engine.runtime.worker

    restrictions = SandboxRestrictions.default.with_passthrough_modules("dsl", *modules)
    engine.runtime.worker.workflow_runner = lambda: SandboxedWorkflowRunner(
        restrictions=restrictions
    )


def worker_child(args: argparse.Namespace) -> None:
    """The worker process of part c: runs until its stdin closes."""

    async def main() -> None:
        pass_through(args.pass_through)
        client = await connect(args.address)
        work = Path(tempfile.mkdtemp(prefix="bench-worker-"))
        smtp = SmtpSettings(host="127.0.0.1", port=args.smtp)
        if args.worker_child == "engine":
            settings = Settings.from_env()
            if args.cache is not None:
                settings = dataclasses.replace(settings, max_cached_workflows=args.cache)
            async with assemble(
                client,
                bench_store(),
                smtp,
                work / "ledger.sqlite",
                args.queue,
                templates_dir=TEMPLATES,
                settings=settings,
            ):
                print("ready", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        else:
            email = handwritten.HandEmail(TEMPLATES, "127.0.0.1", args.smtp)
            extra = {} if args.cache is None else {"max_cached_workflows": args.cache}
            worker = handwritten_worker(
                client, email, args.queue, [parked.WaitingWorkflow], **extra
            )
            async with worker:
                print("ready", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            await email.close()
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(main())


async def run_memory(
    client, server: EmbeddedTemporal, side: str, n: int, args, smtp_port: int
) -> dict:
    tag = uuid.uuid4().hex[:6]
    queue = f"bench-mem-{side}-{tag}"
    cmd = [sys.executable, __file__, "--worker-child", side, "--address", server.address]
    cmd += ["--queue", queue, "--smtp", str(smtp_port)]
    if args.cache is not None:
        cmd += ["--cache", str(args.cache)]
    if args.pass_through:
        cmd += ["--pass-through", ",".join(args.pass_through)]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        await asyncio.to_thread(child.stdout.readline)  # "ready"
        await asyncio.sleep(2.0)  # pollers started, imports done
        before = rss_mb(child.pid)
        server_before = rss_mb(server.process.pid)
        cids = [f"m{tag}-{i}" for i in range(n)]
        limit = asyncio.Semaphore(64)

        async def start(cid: str) -> None:
            event = {"id": f"{cid}-1", "type": "bench.parked", "customer_id": cid}
            event.update(customer=profile(cid), data={})
            async with limit:
                if side == "engine":
                    await send_event(client, event, task_queue=queue)
                else:
                    await client.start_workflow(
                        parked.WaitingWorkflow.run,
                        cid,
                        id=f"hand-{cid}",
                        task_queue=queue,
                        start_signal="event",
                        start_signal_args=[event],
                    )

        t0 = time.perf_counter()
        await asyncio.gather(*(start(c) for c in cids))
        accepted = time.perf_counter() - t0
        # Done when the worker has been idle for 2 s in a row (the server is the
        # bottleneck, so a busy backlog keeps the worker busy until the last one waits).
        idle, last = 0, cpu_seconds(child.pid)
        while idle < 2:
            await asyncio.sleep(1.0)
            now = cpu_seconds(child.pid)
            idle = idle + 1 if now - last < 0.03 else 0
            last = now
        settled = time.perf_counter() - t0 - 2.0
        after = rss_mb(child.pid)
        server_after = rss_mb(server.process.pid)
        # Check a sample really waits (after the RSS reading: queries may replay).
        sample = random.sample(cids, min(20, n))
        waiting = 0
        for cid in sample:
            if side == "engine":
                st = await get_status(client, cid)
                waiting += any(a.get("waiting", {}).get("kind") == "timer" for a in st["active"])
            else:
                handle = client.get_workflow_handle(f"hand-{cid}")
                waiting += (await handle.query("events_processed")) == 1
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    cached = min(n, args.cache if args.cache is not None else SDK_DEFAULT_CACHE)
    delta = after - before
    return {
        "before": before,
        "after": after,
        "delta": delta,
        "kb_each": delta * 1024 / n,
        "kb_cached": delta * 1024 / cached,
        "cached": cached,
        "server_delta": server_after - server_before,
        "accepted": accepted,
        "settled": settled,
        "sample_ok": f"{waiting}/{len(sample)}",
    }


# ---------------------------------------------------------------------- driver


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def alternate(repeat: int) -> list[str]:
    order = []
    for r in range(repeat):
        order += ["engine", "hand"] if r % 2 == 0 else ["hand", "engine"]
    return order


async def main_async(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    server = dev_server(work, args.sqlite)
    sink = SmtpSink().start()
    ledger = await open_ledger(None, work / "ledger.sqlite")
    email = EmailActivities(TEMPLATES, SmtpSettings(host="127.0.0.1", port=sink.port), ledger)
    hand_email: dict[str, handwritten.HandEmail] = {}
    try:
        client = await connect(server.address)
        store = "SQLite" if args.sqlite else "in memory"
        print(f"# dev server {server.address} ({store}), {os.cpu_count()} CPUs, shared machine:")
        print("# other engineers' tests may be running; figures are medians, compare ratios.")
        hand_sides = ["hand", *args.variants]
        for side in hand_sides:
            render, with_ledger = handwritten.VARIANTS[side]
            side_ledger = await open_ledger(None, work / f"{side}.sqlite") if with_ledger else None
            hand_email[side] = handwritten.HandEmail(
                TEMPLATES, "127.0.0.1", sink.port, render, side_ledger
            )
        ctx = {"store": bench_store(), "email": email, "watcher": SinkWatcher(sink).start()}
        ctx["hand_email"] = hand_email
        parts = [args.only] if args.only else ["journeys", "events", "memory"]

        if "journeys" in parts:
            await run_journeys(client, "engine", 10, ctx)  # warm-up: imports, sandbox
            for side in hand_sides:
                await run_journeys(client, side, 10, ctx)
            table = []
            for n in args.customers:
                runs: dict[str, list] = {side: [] for side in ["engine", *hand_sides]}
                for r in range(args.repeat):
                    order = ["engine", *hand_sides]
                    for side in order if r % 2 == 0 else order[::-1]:
                        res = await run_journeys(client, side, n, ctx)
                        runs[side].append(res)
                        print(
                            f"  journeys {side:12} {n:4} {res['wall']:6.2f} s"
                            f"  {res['journeys_s']:6.1f} j/s"
                        )
                table.append((n, runs))
            print("\na. journeys end to end (send, 1 s timer, wait for event, send; 2 events")
            print(f"   each, signal-with-start), median of {args.repeat}; ratio = engine j/s")
            print("   over that side's j/s (target: engine/hand >= 1.0)")
            print(f"   {'customers':>9}{'side':>14}{'wall s':>8}{'journeys/s':>12}{'events/s':>10}")
            for n, runs in table:
                for side, rs in runs.items():
                    print(
                        f"   {n:9}{side:>14}{median_of(rs, 'wall'):8.2f}"
                        f"{median_of(rs, 'journeys_s'):12.1f}{median_of(rs, 'events_s'):10.1f}"
                    )
                cells = ", ".join(
                    f"engine/{side} {median_of(runs['engine'], 'journeys_s') / median_of(rs, 'journeys_s'):.2f}"
                    for side, rs in runs.items()
                    if side != "engine"
                )
                print(f"   {n:9} ratio {cells}")
            print()

        if "events" in parts:
            n, k = args.event_customers, args.events_each
            runs = {"engine": [], "hand": []}
            for side in alternate(args.repeat):
                r = await run_events(client, side, n, k, ctx)
                runs[side].append(r)
                print(
                    f"  events {side:6} accepted {r['accepted_s']:6.1f}/s"
                    f"  processed {r['processed_s']:6.1f}/s"
                )
            e, h = runs["engine"], runs["hand"]
            print(f"\nb. events into entities, {n} customers x {k} events that trigger nothing,")
            print("   signal-with-start, 64 in flight, median of", args.repeat)
            print(f"   {'':14}{'accepted/s':>12}{'processed/s':>13}{'proc/acc':>10}")
            for name, rs in (("engine", e), ("hand-written", h)):
                acc, proc = median_of(rs, "accepted_s"), median_of(rs, "processed_s")
                print(f"   {name:14}{acc:12.1f}{proc:13.1f}{proc / acc:10.2f}")
            ratio = median_of(e, "processed_s") / median_of(h, "processed_s")
            print(f"   ratio engine/hand-written, processed: {ratio:.2f} (target >= 0.9)\n")

        if "memory" in parts:
            n = args.waiting
            sizes = {"engine": n, "hand": args.waiting_baseline}
            results = {}
            for side in ("engine", "hand"):
                r = await run_memory(client, server, side, sizes[side], args, sink.port)
                results[side] = r
                print(
                    f"  memory {side:6} +{r['delta']:.1f} MB in {r['settled']:.0f} s "
                    f"(sample waiting {r['sample_ok']})"
                )
            cache = args.cache if args.cache is not None else f"{SDK_DEFAULT_CACHE} (SDK default)"
            print(
                f"\nc. worker memory, journeys waiting 30 days (engine {n}, hand-written "
                f"{sizes['hand']}), max_cached_workflows={cache}"
            )
            print(
                f"   {'':14}{'count':>6}{'RSS before':>11}{'after':>8}{'delta MB':>10}"
                f"{'KB/journey':>11}{'KB/cached':>10}{'server +MB':>11}{'settled s':>10}"
            )
            for name, side in (("engine", "engine"), ("hand-written", "hand")):
                r = results[side]
                print(
                    f"   {name:14}{sizes[side]:6}{r['before']:11.1f}{r['after']:8.1f}"
                    f"{r['delta']:10.1f}{r['kb_each']:11.1f}{r['kb_cached']:10.1f}"
                    f"{r['server_delta']:11.1f}{r['settled']:10.1f}"
                )
            e, h = results["engine"], results["hand"]
            ratio = e["kb_cached"] / h["kb_cached"] if h["kb_cached"] > 0 else float("nan")
            rate_e, rate_h = n / e["settled"], sizes["hand"] / h["settled"]
            print(f"   at most {e['cached']} workflows stay cached in the worker; the rest are")
            print("   evicted (replayed from history when their timer fires).")
            print(
                f"   ratio engine/hand-written, KB per cached workflow: {ratio:.2f}; "
                f"started-and-waiting rate {rate_e:.1f}/s vs {rate_h:.1f}/s "
                f"({rate_e / rate_h:.2f})\n"
            )
    finally:
        await email.close()
        for hand in hand_email.values():
            await hand.close()
        sink.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 1 minute)")
    parser.add_argument("--only", choices=["journeys", "events", "memory"])
    parser.add_argument(
        "--customers", default=None, help="part a, comma-separated sizes (default 200,500)"
    )
    parser.add_argument(
        "--variants",
        default="hand+pool,hand+ledger",
        help="part a, extra baselines: hand+pool, hand+ledger, or none",
    )
    parser.add_argument("--event-customers", type=int, default=None, help="part b (200)")
    parser.add_argument("--events-each", type=int, default=None, help="part b (5)")
    parser.add_argument("--waiting", type=int, default=None, help="part c (10000)")
    parser.add_argument(
        "--waiting-baseline", type=int, default=None, help="part c, hand-written (2000)"
    )
    parser.add_argument("--cache", type=int, default=None, help="max_cached_workflows")
    parser.add_argument("--repeat", type=int, default=None, help="runs per side (2)")
    parser.add_argument("--sqlite", action="store_true", help="persist the dev server")
    parser.add_argument(
        "--pass-through",
        default="",
        help="experiment: modules the engine's sandbox also passes through, e.g. workflows",
    )
    # Internal: the worker process of part c.
    parser.add_argument("--worker-child", choices=["engine", "hand"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--smtp", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.pass_through = [m for m in args.pass_through.split(",") if m]
    if args.worker_child:
        return worker_child(args)
    pass_through(args.pass_through)
    quick = args.quick
    defaults = {
        "customers": "50" if quick else "200,500",
        "event_customers": 50 if quick else 200,
        "events_each": 3 if quick else 5,
        "waiting": 1000 if quick else 10000,
        "repeat": 1 if quick else 2,
    }
    if args.waiting_baseline is None:
        args.waiting_baseline = min(args.waiting or defaults["waiting"], 2000)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.customers = [int(x) for x in args.customers.split(",")]
    args.variants = [v for v in args.variants.split(",") if v and v != "none"]
    if any(v not in handwritten.VARIANTS or v == "hand" for v in args.variants):
        parser.error("--variants: choose from hand+pool, hand+ledger, none")
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"# took {time.perf_counter() - started:.0f} s")
    return None


if __name__ == "__main__":
    main()
