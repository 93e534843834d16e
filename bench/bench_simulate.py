"""Benchmark: simulated journeys per second on the time-skipping test server.

In: nothing (sign-up events are generated here, shaped like ``samples/events.jsonl``'s
``customer.signed_up``: opted in, no orders).
Out: a table on stdout: N customers through ``rules/onboarding.yaml``'s ``welcome-series``
(welcome -> 2 days -> first-order nudge -> 5 days without an order -> last call -> 1 week
-> no club invite: 3 emails, 14 simulated days each) with

- the engine: ``engine.tools.simulator.simulate()`` over the shipped rules and templates;
- a hand-written workflow doing the same steps (``bench/handwritten.py``
  ``WelcomeWorkflow``), same email activity and worker settings, started by
  signal-with-start and awaited with time skipping unlocked once (FINDINGS.md: a
  ``gather`` over many ``handle.result()`` calls with automatic time skipping hangs);

each on a fresh time-skipping environment (the test server slows as workflows
accumulate), timed from before the environment starts to after it shut down. Prints
journeys/s for both and the ratio engine / hand-written, and checks both sent the same
emails. ``--scaling`` also times the engine at 1/4 and 1/2 of N, to show how its cost
grows with the number of customers.

Run: ``.venv/bin/python bench/bench_simulate.py`` (default 1000 customers, ~3 min; ``--quick``:
100; ``--customers N``). The machine is shared and noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.testing import WorkflowEnvironment  # noqa: E402

from bench import handwritten  # noqa: E402
from bench.bench_runtime import handwritten_worker  # noqa: E402
from engine.delivery.email_activity import EmailActivities  # noqa: E402
from engine.delivery.ledger import open_ledger  # noqa: E402
from engine.delivery.smtp import SmtpSettings  # noqa: E402
from engine.runtime.config import binary_path  # noqa: E402
from engine.runtime.plans import PlanStore  # noqa: E402
from engine.tools.simulator import simulate  # noqa: E402
from engine.tools.smtp_sink import SmtpSink  # noqa: E402

RULES = ROOT / "rules"
TEMPLATES = ROOT / "templates"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXPECTED = {"welcome": 1, "first-order-nudge": 1, "first-order-last-call": 1}


def signup(i: int) -> dict:
    cid = f"c-{i}"
    return {
        "id": f"evt-{i}",
        "type": "customer.signed_up",
        "customer_id": cid,
        "customer": {
            "name": f"Customer {i}",
            "email": f"{cid}@example.test",
            "marketing_opt_in": True,
            "orders_count": 0,
            "lifetime_value": 0,
        },
        "data": {"source": "homepage"},
    }


async def run_engine(n: int, store: PlanStore) -> dict:
    events = [(START, signup(i)) for i in range(n)]
    t0 = time.perf_counter()
    result = await simulate(events, RULES, TEMPLATES, START, until=timedelta(days=30), store=store)
    wall = time.perf_counter() - t0
    sends = Counter(a["template"] for a in result.public_actions() if a["action"] == "send")
    ended = sum(1 for a in result.public_actions() if a["action"] == "end")
    return {"wall": wall, "sends": sends, "ended": ended, "emails": len(result.emails)}


async def run_hand(n: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    sink = SmtpSink().start()
    t0 = time.perf_counter()
    try:
        ledger = await open_ledger(None, work / "ledger.sqlite")
        email = EmailActivities(TEMPLATES, SmtpSettings(host="127.0.0.1", port=sink.port), ledger)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binary_path("temporal-test-server")
        )
        try:
            queue = f"bench-sim-{uuid.uuid4().hex[:8]}"
            worker = handwritten_worker(env.client, email, queue, [handwritten.WelcomeWorkflow])
            async with worker:
                limit = asyncio.Semaphore(64)

                async def start(i: int):
                    event = signup(i)
                    async with limit:
                        return await env.client.start_workflow(
                            handwritten.WelcomeWorkflow.run,
                            event["customer_id"],
                            id=f"hand-{event['customer_id']}",
                            task_queue=queue,
                            start_signal="event",
                            start_signal_args=[event],
                        )

                handles = await asyncio.gather(*(start(i) for i in range(n)))
                async with env.time_skipping_unlocked():
                    with env.auto_time_skipping_disabled():
                        outcomes = await asyncio.gather(*(h.result() for h in handles))
        finally:
            await env.shutdown()
            await email.close()
        wall = time.perf_counter() - t0
        sends = Counter()
        for message in sink.messages:
            sends[_template_of(message)] += 1
        ended = sum(1 for o in outcomes if o == "completed")
        return {"wall": wall, "sends": sends, "ended": ended, "emails": len(sink.messages)}
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def _template_of(captured) -> str:
    """The template an email came from, told by its subject (emails carry no template
    header); enough to count the welcome series' three steps."""
    subject = captured.message.get("Subject", "")
    if subject.startswith("Welcome"):
        return "welcome"
    if subject.startswith("Last call"):
        return "first-order-last-call"
    if "off your first bag" in subject:
        return "first-order-nudge"
    return subject


async def run_capped(coro, timeout: float) -> dict:
    """The engine's run, or a lower bound on its wall time when it exceeds ``timeout``
    (cancelling ``simulate()`` stops its worker, test server and SMTP sink)."""
    t0 = time.perf_counter()
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        return {"wall": time.perf_counter() - t0, "timed_out": True}


def check(name: str, r: dict, n: int) -> str:
    want = Counter({t: c * n for t, c in EXPECTED.items()})
    if r["sends"] != want or r["ended"] != n:
        return f"MISMATCH {name}: sends {dict(r['sends'])}, ended {r['ended']} (want {n})"
    return f"{name}: {r['emails']} emails, {r['ended']} journeys completed, as expected"


async def main_async(args: argparse.Namespace) -> None:
    n = args.customers
    store = PlanStore(RULES, TEMPLATES)
    print(f"# {os.cpu_count()} CPUs, shared machine: other engineers' tests may be running;")
    print("# compare the ratio, not the absolute figures, across runs.")
    # Warm-up (imports, template compilation) on a small run of each side.
    await run_engine(5, store)
    await run_hand(5)
    runs: dict[str, list] = {"engine": [], "hand": []}
    for r in range(args.repeat):
        for side in ("engine", "hand") if r % 2 == 0 else ("hand", "engine"):
            if side == "engine":
                res = await run_capped(run_engine(n, store), args.timeout)
            else:
                res = await run_hand(n)
            runs[side].append(res)
            if res.get("timed_out"):
                print(f"  {side:6} {n} customers: did not finish in {args.timeout:.0f} s")
                continue
            print(f"  {side:6} {n} customers: {res['wall']:7.2f} s  {n / res['wall']:6.1f} j/s")
    scaling = []
    if args.scaling:
        for size in (max(1, n // 4), max(1, n // 2)):
            res = await run_capped(run_engine(size, store), args.timeout)
            scaling.append((size, res["wall"]))
            print(f"  engine {size} customers: {res['wall']:7.2f} s")
    print(f"\nwelcome-series, {n} customers signing up at once, 14 simulated days, 3 emails")
    print(f"each, fresh time-skipping server per run, median of {args.repeat}")
    print(f"   {'':14}{'wall s':>8}{'journeys/s':>12}{'emails/s':>10}")
    medians = {}
    for name, side in (("engine", "engine"), ("hand-written", "hand")):
        wall = statistics.median(r["wall"] for r in runs[side])
        capped = any(r.get("timed_out") for r in runs[side])
        medians[side] = n / wall
        mark = ">" if capped else " "
        print(f"   {name:14}{mark}{wall:7.2f}{n / wall:12.1f}{3 * n / wall:10.1f}")
    bound = "< " if any(r.get("timed_out") for r in runs["engine"]) else ""
    print(f"   ratio engine/hand-written: {bound}{medians['engine'] / medians['hand']:.2f}")
    if bound:
        print(f"   (engine stopped at --timeout {args.timeout:.0f} s: its rate is an upper bound)")
    if scaling:
        scaling.append((n, statistics.median(r["wall"] for r in runs["engine"])))
        cells = ", ".join(f"{size}: {wall:.1f} s ({size / wall:.1f} j/s)" for size, wall in scaling)
        print(f"   engine scaling: {cells}")
    if not runs["engine"][-1].get("timed_out"):
        print("   " + check("engine", runs["engine"][-1], n))
    print("   " + check("hand-written", runs["hand"][-1], n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 customers")
    parser.add_argument("--customers", type=int, default=None, help="default 1000")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="cap on one engine run, s (default 120)"
    )
    parser.add_argument("--scaling", action="store_true", help="also time the engine at N/4, N/2")
    args = parser.parse_args(argv)
    if args.customers is None:
        args.customers = 100 if args.quick else 1000
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"# took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
